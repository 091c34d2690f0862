// The report command: from .npy fixtures (written here with npyjs) to figures, a
// summary and a markdown page; bad directories give a message and exit code 1.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { dump } from 'npyjs';
import { main } from '../src/report/cli';
import { type Random, randomRows, rng, suiteSeed } from './helpers';

const root = path.join(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-report-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function save(dir: string, file: string, data: Float32Array | Int32Array, shape: number[]): void {
  fs.writeFileSync(path.join(dir, file), Buffer.from(dump(data, shape)));
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

describe('mbvr report', { timeout: 120_000 }, () => {
  it('writes figures, summary.json and report.md for two models', async () => {
    const out = path.join(work, 'out-two');
    const lines: string[] = [];
    const code = await main(['report', baseline, balanced, '--out', out, '--ks', '1,5'], (l) => lines.push(l), (l) => lines.push(l));
    assert.equal(code, 0, lines.join('\n'));
    const files = fs.readdirSync(out).sort();
    for (const f of ['recall.svg', 'report.md', 'rvt.svg', 'scores.svg', 'summary.json']) assert.ok(files.includes(f), `${f} in ${files}`);
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

  it('reports one model with only query and fused, skipping what needs more files', async () => {
    const dir = path.join(work, 'minimal');
    fs.mkdirSync(dir);
    for (const f of ['query.npy', 'fused.npy']) fs.copyFileSync(path.join(baseline, f), path.join(dir, f));
    const out = path.join(work, 'out-one');
    const lines: string[] = [];
    assert.equal(await main(['report', dir, '-o', out, '--no-png'], (l) => lines.push(l), (l) => lines.push(l)), 0, lines.join('\n'));
    assert.deepEqual(fs.readdirSync(out).sort(), ['recall.svg', 'recall.vl.json', 'report.md', 'summary.json']);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.models[0].skipped.length, 2);
    assert.equal(summary.models[0].modalityBalance, undefined);
  });

  it('fails with a message naming the file when the data is wrong', async () => {
    const dir = path.join(work, 'bad');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(baseline, 'query.npy'), path.join(dir, 'query.npy'));
    const errors: string[] = [];
    const run = () => main(['report', dir, '-o', path.join(work, 'out-bad')], () => {}, (l) => errors.push(l));
    assert.equal(await run(), 1);
    assert.equal(errors[0], `mbvr: ${path.join(dir, 'fused.npy')} is missing (every model directory needs query.npy and fused.npy)`);
    save(dir, 'fused.npy', new Float32Array(119 * 16), [119, 16]);
    errors.length = 0;
    assert.equal(await run(), 1);
    assert.equal(errors[0], `mbvr: ${path.join(dir, 'fused.npy')}: expected 120 rows (as query.npy) but found 119`);
    save(dir, 'fused.npy', new Int32Array(120 * 16), [120, 16]);
    errors.length = 0;
    assert.equal(await run(), 1);
    assert.equal(errors[0], `mbvr: ${path.join(dir, 'fused.npy')}: expected float32 values (dtype '<f4') but found dtype 'i4'`);
    errors.length = 0;
    assert.equal(await main(['report', dir, '--ks', '1,x'], () => {}, (l) => errors.push(l)), 2);
    assert.deepEqual(errors, ["mbvr: --ks takes positive integers separated by commas, got '1,x'", "Run 'mbvr --help' for usage."]);
  });

  it('runs as the package bin (bin/mbvr.js on the built dist/)', { skip: !fs.existsSync(path.join(root, 'dist', 'report', 'cli.js')) && 'dist/ not built (npm run build:ts)' }, () => {
    const bin = path.join(root, 'bin', 'mbvr.js');
    assert.match(execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' }), /^Usage: mbvr report <model-dir>/);
    const out = path.join(work, 'out-bin');
    const run = spawnSync(process.execPath, [bin, 'report', balanced, '-o', out, '--no-png'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^mbvr: R@1 /);
    assert.ok(fs.existsSync(path.join(out, 'summary.json')));
  });
});
