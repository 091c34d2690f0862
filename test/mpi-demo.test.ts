// Data-parallel training with tfjs (examples/demo under mpirun): each global batch split
// across the ranks, the loss the global batch's (mbvr/tfjs with a comm), the model
// gradients summed with allReduce. A 2-rank run must train the same model as a 1-rank run
// and as the plain single-process demo: the loss per step equal within 1e-4 relative over
// 20 steps, same seed, same global batch.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { suiteSeed } from './helpers';
import { parseResults } from './mpi/common';
import { describeJob, runJob, skip } from './mpi/launch';

const root = path.join(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-mpi-demo-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
if (skip) console.log(`# mpi-demo: ${skip}`);

const demo = ['--videos', '400', '--epochs', '2', '--batch', '64', '--steps', '20', '--only', 'mbvr', '--losses-only', '--seed', '3'];
const losses = (dir: string) =>
  (JSON.parse(fs.readFileSync(path.join(dir, 'training.json'), 'utf8')).mbvr.history as { loss: number }[]).map((h) => h.loss);

describe('data-parallel training with tfjs (the demo under mpirun)', { skip, timeout: 600_000 }, () => {
  it('2 ranks train the same model as 1 rank and as one plain process: losses per step within 1e-4', () => {
    const runs: Record<string, number[]> = {};
    for (const np of [1, 2]) {
      const out = path.join(work, `np${np}`);
      const job = runJob(np, 'examples/demo/main.ts', [...demo, '--out', out], { timeoutMs: 300_000 });
      assert.equal(job.status, 0, describeJob(job));
      assert.match(job.stdout, new RegExp(`data parallel: ${np} MPI rank`), describeJob(job));
      runs[`${np} rank(s)`] = losses(out);
    }
    const plain = path.join(work, 'plain');
    execFileSync(process.execPath, ['--import', 'tsx', 'examples/demo/main.ts', ...demo, '--out', plain], { cwd: root, encoding: 'utf8' });
    runs['one plain process'] = losses(plain);

    const reference = runs['1 rank(s)'];
    assert.equal(reference.length, 20);
    assert.ok(reference[19] < 0.8 * reference[0], `the loss falls: ${reference[0]} -> ${reference[19]}`);
    for (const [name, values] of Object.entries(runs)) {
      assert.equal(values.length, 20, name);
      values.forEach((v, step) =>
        assert.ok(Math.abs(v - reference[step]) <= 1e-4 * Math.abs(reference[step]), `${name}, step ${step + 1}: ${v} vs ${reference[step]}`));
    }
  });

  for (const np of [2, 3])
    it(`${np} ranks with a learned logit scale: each returns its share of dL/ds, so that the sum over the ranks is the global one`, () => {
      const job = runJob(np, 'test/mpi/tfjs-shares.ts', [String(suiteSeed + np)], { timeoutMs: 120_000 });
      assert.equal(job.status, 0, describeJob(job));
      const results = parseResults(job.stdout);
      assert.equal(results.length, np, describeJob(job));
      for (const r of results) assert.deepEqual(r.failures, [], `rank ${r.rank} (replay: seed ${suiteSeed + np})`);
    });
});
