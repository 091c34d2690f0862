// Many calls at once, calls from worker_threads, and exiting with work in flight.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { mbvrLoss, mbvrLossSync } from '../src/index';
import type { MbvrOptions, MbvrResult } from '../src/types';
import { backend, precision, randomCase, rng, sameBits, suiteSeed, type Case } from './helpers';

const root = path.join(__dirname, '..');
const options: MbvrOptions = { backend, precision, margin: 0.1, temperature: 0.07 };

function assertSame(a: MbvrResult, b: MbvrResult, label: string): void {
  assert.equal(a.loss, b.loss, `${label}: loss`);
  assert.deepEqual(a.terms, b.terms, `${label}: terms`);
  for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const)
    assert.ok(sameBits(a.grads![key]!, b.grads![key]!), `${label}: grads.${key}`);
  assert.equal(a.grads!.temperature, b.grads!.temperature, `${label}: grads.temperature`);
}

describe('concurrency', () => {
  it('64 concurrent mbvrLoss promises on distinct inputs equal the sequential results', async () => {
    const random = rng(suiteSeed + 300);
    const cases: Case[] = Array.from({ length: 64 }, (_, n) => randomCase(random, 20 + n * 3, 8 + (n % 5), 1 + (n % 3)));
    const sequential = cases.map((c) => mbvrLossSync(c, options));
    const concurrent = await Promise.all(cases.map((c) => mbvrLoss(c, options)));
    concurrent.forEach((r, n) => assertSame(r, sequential[n], `case ${n}`));
  });

  it('64 concurrent mbvrLoss promises on shared inputs equal the sequential result', async () => {
    const c = randomCase(rng(suiteSeed + 301), 300, 24, 2);
    const sequential = mbvrLossSync(c, options);
    const concurrent = await Promise.all(Array.from({ length: 64 }, () => mbvrLoss(c, options)));
    concurrent.forEach((r, n) => assertSame(r, sequential, `call ${n}`));
  });

  it('works from worker_threads, in parallel with the main thread', async () => {
    const c = randomCase(rng(suiteSeed + 302), 150, 16, 2);
    const expected = mbvrLossSync(c, options);
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { mbvrLoss, mbvrLossSync } = require('mbvr');
      const sync = mbvrLossSync(workerData.c, workerData.options);
      mbvrLoss(workerData.c, workerData.options).then((async) => parentPort.postMessage({ sync, async }));`;
    const run = () =>
      new Promise<{ sync: MbvrResult; async: MbvrResult }>((resolve, reject) => {
        const worker = new Worker(source, { eval: true, workerData: { c, options } });
        worker.once('message', (m) => {
          void worker.terminate();
          resolve(m);
        });
        worker.once('error', reject);
      });
    const [results, main] = await Promise.all([Promise.all([run(), run(), run()]), mbvrLoss(c, options)]);
    assertSame(main, expected, 'main thread');
    for (const [n, r] of results.entries()) {
      assertSame(r.sync, expected, `worker ${n} sync`);
      assertSame(r.async, expected, `worker ${n} async`);
    }
  });

  it('a process that exits while work is in flight exits cleanly', () => {
    const script = (exit: string) => `
      const { mbvrLoss } = require('mbvr');
      const B = 1500, D = 128;
      const a = Float32Array.from({ length: B * D }, (_, i) => Math.sin(i));
      for (let n = 0; n < 4; n++) mbvrLoss({ batch: B, dim: D, query: a, fused: a, visual: a, text: a, shuffled: a });
      ${exit}`;
    for (const exit of ['setTimeout(() => process.exit(0), 20);', 'process.exit(0);', "setTimeout(() => { throw new Error('boom'); }, 20);"]) {
      const r = spawnSync(process.execPath, ['-e', script(exit)], { cwd: root, encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.signal, null, `${exit}: killed by ${r.signal}\n${r.stderr}`);
      const expected = exit.includes('boom') ? 1 : 0;
      assert.equal(r.status, expected, `${exit}: exit code ${r.status}\n${r.stderr}`);
      assert.ok(!/Assertion|Segmentation|Aborted|core dumped/i.test(r.stderr), r.stderr);
    }
  });

  it('a worker terminated while its call is in flight does not take the process down', async () => {
    const source = `
      const { mbvrLoss } = require('mbvr');
      const B = 2000, D = 256;
      const a = Float32Array.from({ length: B * D }, (_, i) => Math.cos(i));
      mbvrLoss({ batch: B, dim: D, query: a, fused: a, visual: a, text: a, shuffled: a });
      require('node:worker_threads').parentPort.postMessage('started');`;
    const worker = new Worker(source, { eval: true });
    await new Promise((resolve) => worker.once('message', resolve));
    await worker.terminate();
    // The main thread still computes.
    const c = randomCase(rng(suiteSeed + 303), 40, 8, 1);
    assert.ok(Number.isFinite(mbvrLossSync(c, options).loss));
  });
});
