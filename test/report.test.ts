// The report, from code (report()) and on the command line (mbvr report): from .npy
// fixtures to figures, a summary and a markdown page; bad input gives a message naming
// the file (exit code 1) or the flag (exit code 2); without the optional renderers the
// numbers are still written; require('mbvr') never loads the renderers.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { saveNpy } from '../src/npy';
import { main } from '../src/report/cli';
import { report } from '../src/report/report';
import { type Random, randomRows, rng, suiteSeed } from './helpers';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-report-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function save(dir: string, file: string, data: Float32Array | Int32Array | BigInt64Array, shape: number[]): void {
  saveNpy(path.join(dir, file), data, shape);
}

/** a * x_i + b * y_j + noise, row by row. */
function mix(random: Random, x: Float32Array, y: Float32Array, rowsX: number[], rowsY: number[], a: number, b: number, dim: number): Float32Array {
  const noise = randomRows(random, rowsX.length, dim);
  const out = new Float32Array(rowsX.length * dim);
  for (let r = 0; r < rowsX.length; r++)
    for (let d = 0; d < dim; d++) out[r * dim + d] = a * x[rowsX[r] * dim + d] + b * y[rowsY[r] * dim + d] + 0.3 * noise[r * dim + d];
  return out;
}

/**
 * A synthetic model: fused m_i = wt t_i + wv v_i, MS negatives s_ik = wt t_i + wv v_j,
 * queries that match text and vision. A text-heavy fusion (wt >> wv) is the baseline.
 */
function writeModel(dir: string, seed: number, wt: number, wv: number, opts: { batch?: number; k?: number; gallery?: boolean } = {}): void {
  const random = rng(seed);
  const [batch, dim, k] = [opts.batch ?? 120, 16, opts.k ?? 3];
  fs.mkdirSync(dir, { recursive: true });
  const t = randomRows(random, batch, dim);
  const v = randomRows(random, batch, dim);
  const ids = Array.from({ length: batch }, (_, i) => i);
  const shuffledRows = ids.flatMap((i) => Array.from({ length: k }, () => i));
  const others = ids.flatMap((i) => Array.from({ length: k }, (_, n) => (i + 1 + n) % batch));
  save(dir, 'query.npy', mix(random, t, v, ids, ids, 1, 1, dim), [batch, dim]);
  save(dir, 'fused.npy', mix(random, t, v, ids, ids, wt, wv, dim), [batch, dim]);
  save(dir, 'text.npy', t, [batch, dim]);
  save(dir, 'visual.npy', v, [batch, dim]);
  save(dir, 'shuffled.npy', mix(random, t, v, shuffledRows, others, wt, wv, dim), [batch, k, dim]);
  if (opts.gallery) {
    const extra = randomRows(random, 50, dim);
    const fused = mix(random, t, v, ids, ids, wt, wv, dim);
    const gallery = new Float32Array((batch + 50) * dim);
    gallery.set(extra);
    gallery.set(fused, 50 * dim);
    save(dir, 'gallery.npy', gallery, [batch + 50, dim]);
    save(dir, 'targets.npy', Int32Array.from(ids, (i) => 50 + i), [batch]);
  }
}

const baseline = path.join(work, 'baseline');
const balanced = path.join(work, 'mbvr');
writeModel(baseline, suiteSeed + 600, 1, 0.15);
writeModel(balanced, suiteSeed + 601, 0.8, 0.8, { gallery: true });

const root = path.join(__dirname, '..');
const hook = path.join(work, 'hide-renderers.cjs');
// Preloaded into child processes: resolving any name listed in MBVR_HIDE fails as if the
// package were not installed; every attempt to resolve a renderer is printed to stderr.
fs.writeFileSync(
  hook,
  `const Module = require('node:module');
const hidden = (process.env.MBVR_HIDE || '').split(',').filter(Boolean);
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (/^(vega|vega-lite|@resvg\\/resvg-js)$/.test(request)) process.stderr.write('resolving ' + request + '\\n');
  // (tsx retries a failed bare name as name/index, name.js, ...: hide those too)
  if (hidden.some((h) => request === h || request.startsWith(h + '/') || request.startsWith(h + '.'))) {
    const error = new Error("Cannot find module '" + request + "'");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};
`,
);

/** Runs `script` (CommonJS, `root` in scope) in a child Node with tsx and the hook. */
function child(script: string, hide: string[] = []) {
  return spawnSync(process.execPath, ['--import', 'tsx', '-r', hook, '-e', `const root = ${JSON.stringify(root)};\n${script}`], {
    encoding: 'utf8',
    env: { ...process.env, MBVR_HIDE: hide.join(',') },
  });
}

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe('mbvr report', { timeout: 180_000 }, () => {
  it('writes figures, summary.json and report.md for two models', async () => {
    const out = path.join(work, 'out-two');
    const { code, out: lines, err } = await run(['report', baseline, balanced, '--out', out, '--ks', '1,5']);
    assert.equal(code, 0, err.join('\n'));
    assert.deepEqual(err, []);
    const files = fs.readdirSync(out).sort();
    for (const f of ['recall.svg', 'report.md', 'rvt.svg', 'scores.svg', 'summary.json', 'rvt.vl.json']) assert.ok(files.includes(f), `${f} in ${files}`);
    assert.match(lines[2], new RegExp(`^wrote ${files.length} files to ${out.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}: `));
    for (const f of ['recall.svg', 'rvt.svg', 'scores.svg']) {
      const svg = fs.readFileSync(path.join(out, f), 'utf8');
      assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(svg, /baseline/, `${f} names the first model`);
      assert.match(svg, /mbvr/, `${f} names the second model`);
    }
    assert.match(fs.readFileSync(path.join(out, 'rvt.svg'), 'utf8'), /R_vt = cos\(v, m\) \/ cos\(t, m\)/);
    assert.match(fs.readFileSync(path.join(out, 'scores.svg'), 'utf8'), /MS negative/);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(summary.ks, [1, 5]);
    const [b, m] = summary.models;
    assert.equal(b.name, 'baseline');
    assert.equal(m.retrieval.gallery, 'gallery.npy');
    assert.equal(m.retrieval.cols, 170);
    assert.equal(b.scoreSeparation.k, 3);
    assert.deepEqual(summary.figures.skipped, []);
    // The fixture's text-heavy baseline leans on text and barely separates MS negatives.
    assert.ok(b.modalityBalance.summary.median < m.modalityBalance.summary.median);
    assert.ok(b.scoreSeparation.auc < m.scoreSeparation.auc);
    for (const r of [b, m]) {
      assert.ok(r.retrieval.recall['1'] <= r.retrieval.recall['5']);
      assert.ok(r.retrieval.medianRank >= 1);
    }
    assert.match(fs.readFileSync(path.join(out, 'report.md'), 'utf8'), /\| baseline \| 120 \| 16 \|/);
    let png = false;
    try {
      require.resolve('@resvg/resvg-js');
      png = true;
    } catch {
      // PNGs are optional
    }
    if (png) for (const f of ['recall.png', 'rvt.png', 'scores.png']) assert.deepEqual(fs.readFileSync(path.join(out, f)).subarray(1, 4).toString(), 'PNG');
  });

  it('report() returns what summary.json holds and the files it wrote', async () => {
    const out = path.join(work, 'out-api');
    const result = await report([baseline], { out, ks: [2, 3], bins: 12, png: false, names: ['base'] });
    assert.equal(result.out, path.resolve(out));
    assert.deepEqual([...result.files].sort(), fs.readdirSync(out).sort());
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')), JSON.parse(JSON.stringify(result.summary)));
    assert.deepEqual(result.summary.ks, [2, 3]);
    assert.equal(result.summary.models[0].name, 'base');
    assert.deepEqual(result.summary.figures.drawn, ['rvt.svg', 'scores.svg', 'recall.svg']);
    // 12 bins: the R_vt histogram spec holds 12 bars for the one model.
    const spec = JSON.parse(fs.readFileSync(path.join(out, 'rvt.vl.json'), 'utf8'));
    assert.equal(spec.layer[0].data.values.length, 12);
  });

  it('reports one model with only query and fused, skipping what needs more files', async () => {
    const dir = path.join(work, 'minimal');
    fs.mkdirSync(dir);
    for (const f of ['query.npy', 'fused.npy']) fs.copyFileSync(path.join(baseline, f), path.join(dir, f));
    const out = path.join(work, 'out-one');
    const { code, err } = await run(['report', dir, '-o', out, '--no-png']);
    assert.equal(code, 0, err.join('\n'));
    assert.deepEqual(fs.readdirSync(out).sort(), ['recall.svg', 'recall.vl.json', 'report.md', 'summary.json']);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.models[0].skipped.length, 2);
    assert.equal(summary.models[0].modalityBalance, undefined);
  });

  it('reads shuffled.npy as [B, K, D] or [B*K, D] alike, and int64 targets', async () => {
    const dir = path.join(work, 'flat');
    fs.cpSync(balanced, dir, { recursive: true });
    const s = fs.readFileSync(path.join(balanced, 'shuffled.npy'));
    const { loadNpy } = await import('../src/npy');
    const three = loadNpy(path.join(balanced, 'shuffled.npy'));
    save(dir, 'shuffled.npy', three.data as Float32Array, [three.shape[0] * three.shape[1], three.shape[2]]);
    const targets = loadNpy(path.join(balanced, 'targets.npy')).data as Int32Array;
    save(dir, 'targets.npy', BigInt64Array.from(targets, (v) => BigInt(v)), [targets.length]);
    assert.notDeepEqual(fs.readFileSync(path.join(dir, 'shuffled.npy')), s);
    const [a, b] = await Promise.all([
      report([balanced], { out: path.join(work, 'out-3d'), png: false }),
      report([dir], { out: path.join(work, 'out-2d'), png: false }),
    ]);
    const [ma, mb] = [a.summary.models[0], b.summary.models[0]];
    assert.equal(mb.scoreSeparation!.k, 3);
    assert.deepEqual(mb.scoreSeparation, ma.scoreSeparation);
    assert.deepEqual(mb.retrieval, ma.retrieval);
  });

  it('fails with a message naming the file, and what is wrong, when the data is wrong', async () => {
    const dir = path.join(work, 'bad');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(baseline, 'query.npy'), path.join(dir, 'query.npy'));
    const fused = (f: string) => path.join(dir, f);
    const expectFailure = async (message: string) => {
      const { code, err } = await run(['report', dir, '-o', path.join(work, 'out-bad')]);
      assert.equal(code, 1);
      assert.deepEqual(err, [`mbvr: ${message}`]);
      await assert.rejects(report([dir], { out: path.join(work, 'out-bad') }), (e: unknown) => (e as Error).message === message);
    };
    await expectFailure(`${fused('fused.npy')} is missing (every model directory needs query.npy and fused.npy)`);
    save(dir, 'fused.npy', new Float32Array(119 * 16), [119, 16]);
    await expectFailure(`${fused('fused.npy')}: expected 120 rows (as query.npy) but found 119`);
    save(dir, 'fused.npy', new Int32Array(120 * 16), [120, 16]);
    await expectFailure(`${fused('fused.npy')}: expected float32 values (dtype '<f4') but found int32 ('<i4'); save it with a.astype('float32')`);
    const withNaN = new Float32Array(120 * 16);
    withNaN[37] = NaN;
    save(dir, 'fused.npy', withNaN, [120, 16]);
    await expectFailure(`${fused('fused.npy')}: NaN at index 37 (row 2, column 5); every value must be finite`);
    withNaN[37] = -Infinity;
    save(dir, 'fused.npy', withNaN, [120, 16]);
    await expectFailure(`${fused('fused.npy')}: -Infinity at index 37 (row 2, column 5); every value must be finite`);
    save(dir, 'fused.npy', new Float32Array(120 * 16), [120, 16]);
    fs.writeFileSync(fused('fused.npy'), fs.readFileSync(fused('fused.npy')).subarray(0, 1000));
    await expectFailure(`${fused('fused.npy')}: truncated data: expected 7680 bytes of data (shape [120, 16], float32), found 872`);
    save(dir, 'fused.npy', new Float32Array(120 * 16), [120, 16]);
    save(dir, 'shuffled.npy', new Float32Array(120 * 2 * 15), [120, 2, 15]);
    await expectFailure(`${fused('shuffled.npy')}: expected shape [120, K, 16] or [120 * K, 16] (batch, negatives per query, dim) but found [120, 2, 15]`);
    save(dir, 'shuffled.npy', new Float32Array(250 * 16), [250, 16]);
    await expectFailure(`${fused('shuffled.npy')}: expected shape [120, K, 16] or [120 * K, 16] (batch, negatives per query, dim) but found [250, 16]`);
    fs.rmSync(fused('shuffled.npy'));
    save(dir, 'targets.npy', Int32Array.from({ length: 120 }, (_, i) => (i === 7 ? 120 : i)), [120]);
    await expectFailure(`${fused('targets.npy')}: target 120 at index 7 is not a row of fused.npy (120 rows)`);
    save(dir, 'targets.npy', BigInt64Array.from({ length: 120 }, (_, i) => (i === 9 ? 2n ** 40n : BigInt(i))), [120]);
    await expectFailure(`${fused('targets.npy')}: target 1099511627776 at index 9 is not a row of fused.npy (120 rows)`);
    save(dir, 'targets.npy', new Float32Array(120), [120]);
    await expectFailure(`${fused('targets.npy')}: expected integers (int32 or int64) but found float32 ('<f4'); save it with a.astype('int64')`);
    const nowhere = path.join(work, 'nowhere');
    assert.deepEqual((await run(['report', nowhere])).err, [`mbvr: ${nowhere}: not a directory (each model is a directory of .npy files)`]);
  });

  it('refuses bad usage naming the flag (exit code 2), and bad options naming the option', async () => {
    const usage = async (args: string[], message: string) => {
      const { code, err } = await run(['report', ...args]);
      assert.equal(code, 2, `${args.join(' ')}: ${err.join('\n')}`);
      assert.deepEqual(err, [`mbvr: ${message}`, "Run 'mbvr --help' for usage."]);
    };
    await usage([baseline, '--ks', '1,x'], "--ks takes positive integers separated by commas, got '1,x'");
    await usage([baseline, '--ks', '0'], "--ks takes positive integers separated by commas, got '0'");
    await usage([baseline, '--bins', '1000000'], "--bins takes a whole number from 1 to 1000, got '1000000'");
    await usage([baseline, '--bins', '0'], "--bins takes a whole number from 1 to 1000, got '0'");
    await usage([baseline, '--bins', '2.5'], "--bins takes a whole number from 1 to 1000, got '2.5'");
    await usage([baseline, '--bins', '40,50'], "--bins takes a whole number from 1 to 1000, got '40,50'");
    await usage([], 'report takes one or two model directories, got 0');
    await usage([baseline, balanced, baseline], 'report takes one or two model directories, got 3');
    await usage([baseline, '--names', 'a,b'], "--names takes one name per directory (1), separated by commas, got 'a,b'");
    await usage([baseline, '--colour'], "Unknown option '--colour'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--colour\"");
    const rejects = (dirs: unknown, options: unknown, Kind: typeof Error, message: string) =>
      assert.rejects(report(dirs as string[], options as never), (e: unknown) => e instanceof Kind && (e as Error).message === message);
    await rejects([baseline], { bins: 0 }, RangeError, 'Expected an integer from 1 to 1000 for bins but received 0 of type number');
    await rejects([baseline], { bins: '40' }, TypeError, "Expected an integer from 1 to 1000 for bins but received '40' of type string");
    await rejects([baseline], { ks: [1, 0] }, RangeError, 'Expected a non-empty array of positive integers for ks but received [1, 0]');
    await rejects([baseline], { names: ['a', 'b'] }, RangeError, 'Expected 1 name (one per directory) for names but received 2');
    await rejects([baseline], { png: 'no' }, TypeError, "Expected a boolean for png but received 'no' of type string");
    await rejects([baseline], { kss: [1, 2] }, TypeError, "Expected one of the options out, names, ks, bins, png (did you mean 'ks'?) for options.kss but received Array");
    await rejects([], {}, RangeError, 'Expected an array of one or two model directories for dirs but received 0 directories');
    await rejects(baseline, {}, TypeError, `Expected an array of one or two model directories for dirs but received '${baseline}' of type string`);
  });

  it('without vega it still writes the numbers and the specs, and says what to install', () => {
    const out = path.join(work, 'out-no-vega');
    const r = child(`require(root + '/src/report/cli').main(['report', ${JSON.stringify(balanced)}, '-o', ${JSON.stringify(out)}]).then((c) => (process.exitCode = c));`, ['vega']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(out).sort(), ['recall.vl.json', 'report.md', 'rvt.vl.json', 'scores.vl.json', 'summary.json']);
    const note = 'rvt.svg, scores.svg, recall.svg: vega is not installed (npm install vega vega-lite); the Vega-Lite specs are in rvt.vl.json, scores.vl.json, recall.vl.json';
    assert.match(r.stderr, new RegExp(`mbvr: note: skipped ${note.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`));
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(summary.figures, { drawn: [], skipped: [note] });
    assert.ok(summary.models[0].retrieval.recall['1'] > 0);
    assert.match(fs.readFileSync(path.join(out, 'report.md'), 'utf8'), /- figures: skipped rvt.svg, scores.svg, recall.svg: vega is not installed/);
  });

  it('without @resvg/resvg-js it writes SVG only, and says so', () => {
    const out = path.join(work, 'out-no-resvg');
    const r = child(
      `require(root + '/src/report/report').report([${JSON.stringify(baseline)}], { out: ${JSON.stringify(out)} }).then((x) => console.log(JSON.stringify(x.summary.figures)));`,
      ['@resvg/resvg-js'],
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      drawn: ['rvt.svg', 'scores.svg', 'recall.svg'],
      skipped: ['PNG: @resvg/resvg-js is not installed (npm install @resvg/resvg-js), or pass png: false (--no-png)'],
    });
    assert.ok(!fs.readdirSync(out).some((f) => f.endsWith('.png')));
  });

  it("require('mbvr') loads none of the renderers; drawing a figure does", () => {
    const r = child(
      `const m = require(root + '/src/index');
       if (typeof m.report !== 'function' || typeof m.loadNpy !== 'function') throw new Error('exports');
       m.modalityShuffle(8, { k: 2, seed: 1 });
       process.stderr.write('loaded\\n');
       m.report([${JSON.stringify(baseline)}], { out: ${JSON.stringify(path.join(work, 'out-lazy'))}, png: false });`,
    );
    assert.equal(r.status, 0, r.stderr);
    const [before, afterLoad] = r.stderr.split('loaded\n');
    assert.equal(before, '', 'nothing resolved a renderer while loading mbvr');
    assert.match(afterLoad, /resolving vega\n/, 'the hook does see the renderers when a figure is drawn');
    if (fs.existsSync(path.join(root, 'dist', 'index.js'))) {
      const d = child(`require(root); console.log(Object.keys(require.cache).filter((f) => /vega|resvg/.test(f)).length);`);
      assert.equal(d.status, 0, d.stderr);
      assert.equal(d.stdout.trim(), '0');
      assert.equal(d.stderr, '');
    }
  });

  it('runs as the package bin (bin/mbvr.js on the built dist/)', { skip: !fs.existsSync(path.join(root, 'dist', 'report', 'cli.js')) && 'dist/ not built (npm run build:ts)' }, () => {
    const bin = path.join(root, 'bin', 'mbvr.js');
    assert.match(execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' }), /^Usage: mbvr report <model-dir>/);
    const out = path.join(work, 'out-bin');
    const run = spawnSync(process.execPath, [bin, 'report', balanced, '-o', out, '--no-png'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^mbvr: R@1 /);
    assert.ok(fs.existsSync(path.join(out, 'summary.json')));
    const bad = spawnSync(process.execPath, [bin, 'report', balanced, '--bins', '0'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, "mbvr: --bins takes a whole number from 1 to 1000, got '0'\nRun 'mbvr --help' for usage.\n");
  });
});
