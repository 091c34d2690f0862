// No lifecycle event takes the process down, and every promise settles: a worker thread
// terminated while it calls the addon; an input's memory transferred, detached, shrunk or
// collected while a mbvrLoss promise is pending (an asynchronous call owns copies of what
// it reads); outputs too large for memory (an Error that says how many bytes, and the next
// call works); a failure while the result is built (the promise rejects). Races are
// repeated 30+ times, each scenario in a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const root = path.join(__dirname, '..');

function node(script: string, options: { args?: string[]; env?: NodeJS.ProcessEnv; ulimitKb?: number } = {}) {
  const args = [...(options.args ?? []), '-e', script];
  const command = options.ulimitKb
    ? spawnSync('bash', ['-c', `ulimit -v ${options.ulimitKb}; exec "$0" "$@"`, process.execPath, ...args], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, ...options.env },
        timeout: 240_000,
      })
    : spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...options.env }, timeout: 240_000 });
  return command;
}

function assertClean(r: ReturnType<typeof node>, label: string): string {
  assert.equal(r.signal, null, `${label}: killed by ${r.signal}\n${r.stderr}`);
  assert.equal(r.status, 0, `${label}: exit code ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.ok(!/terminate called|Segmentation|Aborted|FATAL ERROR|core dumped/i.test(r.stderr), `${label}: ${r.stderr}`);
  return r.stdout;
}

// Inputs of about 30 ms per call, so that a termination lands inside one.
const setup = `
const B = 600, D = 96, K = 2;
const rows = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s));
const inputs = () => ({ batch: B, dim: D, query: rows(B * D, 1), fused: rows(B * D, 2), visual: rows(B * D, 3),
                        text: rows(B * D, 4), shuffled: rows(B * K * D, 5) });
const options = () => ({ backend: 'cpu', margin: rows(B, 6).map((x) => 0.1 * x), labels: Int32Array.from({ length: B }, (_, i) => i % 500) });
`;

describe('lifecycle', () => {
  it('a worker terminated while it calls mbvrLoss, mbvrLossSync, topK or similarity ends cleanly (40 times each)', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const body = (call) => \`
        const m = require('mbvr');
        ${setup.replace(/`/g, '\\`')}
        const x = inputs(), o = options();
        require('node:worker_threads').parentPort.postMessage('ready');
        (async () => { for (;;) { \${call} } })();\`;
      const calls = {
        mbvrLoss: 'await m.mbvrLoss(x, o);',
        mbvrLossSync: 'm.mbvrLossSync(x, o); await null;',
        topK: 'm.topK(x.query, x.fused, { rows: B, cols: B, dim: D, k: 10 }); await null;',
        similarity: 'm.similarity(x.query, x.fused, { rows: B, cols: B, dim: D }); await null;',
      };
      (async () => {
        for (const [name, call] of Object.entries(calls))
          for (let n = 0; n < 40; n++) {
            const w = new Worker(body(call), { eval: true });
            await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 40));
            await w.terminate();
          }
        // The main thread still computes.
        const m = require('mbvr');
        ${setup.replace(/`/g, '\\`')}
        console.log('ok', m.mbvrLossSync(inputs(), options()).loss.toFixed(6));
      })();`;
    const out = assertClean(node(script), 'terminated workers');
    assert.match(out, /^ok \d/);
  });

  it('inputs transferred, detached, shrunk or collected while mbvrLoss is pending do not change its result (30 times)', () => {
    const script = `
      const m = require('mbvr');
      const { Worker } = require('node:worker_threads');
      ${setup}
      const sameBits = (a, b) => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
      const expected = m.mbvrLossSync(inputs(), options());
      const check = (r, what) => {
        if (r.loss !== expected.loss) throw new Error(what + ': loss ' + r.loss + ' vs ' + expected.loss);
        for (const k of ['query', 'fused', 'visual', 'text', 'shuffled'])
          if (!sameBits(r.grads[k], expected.grads[k])) throw new Error(what + ': grads.' + k + ' differ');
      };
      const detach = (array) => structuredClone(array.buffer, { transfer: [array.buffer] });
      const sink = new Worker('require("node:worker_threads").parentPort.once("message", () => process.exit(0));', { eval: true });
      (async () => {
        for (let n = 0; n < 30; n++) {
          // Detached after the call: every input, the margins and the labels.
          let x = inputs(), o = options();
          let pending = m.mbvrLoss(x, o);
          for (const k of ['query', 'fused', 'visual', 'text', 'shuffled']) detach(x[k]);
          detach(o.margin); detach(o.labels);
          check(await pending, 'detached');
          // Transferred to a worker that exits, then collected.
          x = inputs(); o = options();
          pending = m.mbvrLoss(x, o);
          if (n === 0) sink.postMessage(x.query.buffer, [x.query.buffer]);
          else detach(x.query);
          x = null; o = null; global.gc();
          check(await pending, 'transferred');
          // A resizable ArrayBuffer shrunk to nothing.
          if (ArrayBuffer.prototype.resize) {
            x = inputs();
            const buffer = new ArrayBuffer(x.fused.byteLength, { maxByteLength: x.fused.byteLength });
            const view = new Float32Array(buffer);
            view.set(x.fused);
            pending = m.mbvrLoss({ ...x, fused: view }, options());
            buffer.resize(0);
            check(await pending, 'shrunk');
          }
        }
        console.log('ok');
      })().catch((e) => { console.error(e); process.exit(1); });`;
    assert.match(assertClean(node(script, { args: ['--expose-gc'] }), 'detached inputs'), /^ok/);
  });

  // AddressSanitizer maps terabytes of shadow memory: under `ulimit -v` it cannot start.
  const asan = /libasan/.test(process.env.LD_PRELOAD ?? '') && 'skipped under AddressSanitizer (it cannot start under ulimit -v)';
  it('an output too large for memory is an Error that says out of memory and how many bytes, and the next call works', { skip: asan }, () => {
    const script = `
      const m = require('mbvr');
      const a = new Float32Array(40000 * 8).fill(1);
      const expectOom = (fn, what) => {
        try { fn(); } catch (e) {
          if (!(e instanceof Error) || !/out of memory: could not allocate \\d+ bytes/.test(e.message)) throw e;
          console.log(what + ': ' + e.message);
          return;
        }
        throw new Error(what + ': no error');
      };
      expectOom(() => m.similarity(a, a, { rows: 40000, cols: 40000, dim: 8 }), 'similarity');
      expectOom(() => m.topK(new Float32Array(1e6 * 8).fill(1), new Float32Array(1000 * 8).fill(1), { rows: 1e6, cols: 1000, dim: 8, k: 1000 }), 'topK');
      const next = m.similarity(a.subarray(0, 80), a.subarray(0, 80), { rows: 10, cols: 10, dim: 8 });
      if (next.length !== 100 || Math.abs(next[0] - 20) > 1e-4) throw new Error('next call ' + next[0]);
      console.log('ok');`;
    const out = assertClean(node(script, { ulimitKb: 3_000_000 }), 'ulimit');
    assert.match(out, /similarity: mbvr: out of memory: could not allocate 6400000000 bytes/);
    assert.match(out, /topK: mbvr: out of memory: could not allocate 4000000000 bytes/);
    assert.match(out, /\nok/);
  });

  it('a failure while the result is built rejects the promise (and throws from the sync form)', () => {
    const script = `
      const m = require('mbvr');
      ${setup}
      (async () => {
        let rejected = 0;
        for (let n = 0; n < 30; n++)
          await m.mbvrLoss(inputs(), options()).then(() => { throw new Error('resolved'); }, (e) => {
            if (!/building the result failed/.test(e.message)) throw e;
            rejected++;
          });
        try { m.mbvrLossSync(inputs(), options()); throw new Error('returned'); } catch (e) { if (!/building the result failed/.test(e.message)) throw e; }
        console.log('ok', rejected);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    assert.match(assertClean(node(script, { env: { MBVR_TEST_FAULT: 'result' } }), 'result fault'), /^ok 30/);
  });
});
