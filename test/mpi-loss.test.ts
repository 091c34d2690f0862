// The data-parallel loss over real MPI (test/mpi/loss.ts under mpirun): at 1 to 4 ranks,
// over shared memory and over TCP on 127.0.0.1, the joined gradients equal the
// single-process result on the concatenated batch within 1e-5 relative, over random
// shapes and options (labels with duplicates across ranks, per-row margins, K > 1,
// tau = 0.01, normalize off, empty ranks, each weight zero in turn), from mbvrLoss and
// from mbvrLossSync alike; bad input or mismatched options reject on every rank. A rank
// that dies mid-loss takes the job down within seconds. The in-process twin without MPI
// is test/distributed.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { suiteSeed } from './helpers';
import { parseResults } from './mpi/common';
import { describeJob, openMpi, runJob, skip } from './mpi/launch';

if (skip) console.log(`# mpi-loss: ${skip}`);

describe('the data-parallel loss under mpirun', { skip, timeout: 900_000 }, () => {
  const transports = openMpi ? (['shared memory', 'tcp'] as const) : (['default'] as const);
  for (const transport of transports)
    for (const np of [1, 2, 3, 4]) {
      it(`${np} rank(s) over ${transport}: equals the single-process loss; faults reject on every rank`, () => {
        const seed = suiteSeed + 10 * np + (transport === 'tcp' ? 1 : 0);
        const job = runJob(np, 'test/mpi/loss.ts', [String(seed), '5'], { tcp: transport === 'tcp', timeoutMs: 180_000 });
        assert.equal(job.status, 0, describeJob(job));
        const results = parseResults(job.stdout);
        assert.equal(results.length, np, describeJob(job));
        for (const r of results) {
          assert.deepEqual(r.failures, [], `rank ${r.rank} (replay: MBVR_TEST_SEED=${suiteSeed})`);
          assert.ok((r.checks as number) > 20, `rank ${r.rank} ran ${r.checks} checks`);
        }
      });
    }

  it('a rank killed in the middle of a loss takes the job down, non-zero, within 20 s', () => {
    const job = runJob(2, 'test/mpi/loss-death.ts', [], { timeoutMs: 60_000 });
    assert.ok(!job.timedOut && job.status !== null && job.status !== 0, describeJob(job));
    assert.ok(job.seconds < 20, `took ${job.seconds.toFixed(1)} s\n${describeJob(job)}`);
    assert.match(job.stdout, /rank 1 dies now/, describeJob(job));
  });

  for (const [mode, why] of [['exit-pending', 'collective calls'], ['exit-between', 'a data-parallel loss']] as const)
    it(`a rank that exits normally in the middle of a loss (${mode}) takes the job down too, saying why`, () => {
      const job = runJob(2, 'test/mpi/loss-exit.ts', [mode], { timeoutMs: 60_000 });
      assert.ok(!job.timedOut && job.status !== null && job.status !== 0, describeJob(job));
      assert.ok(job.seconds < 20, `took ${job.seconds.toFixed(1)} s\n${describeJob(job)}`);
      assert.match(job.stderr, new RegExp(`mbvr/mpi: this rank exits \\(code 0\\) with ${why} still in flight`), describeJob(job));
      assert.doesNotMatch(job.stdout, /UNEXPECTED/, describeJob(job));
    });

  for (const mode of ['finalize-early', 'exit-idle'])
    it(`a rank that finalizes while another is in a collective (${mode}) ends the job, naming both`, () => {
      const job = runJob(2, 'test/mpi/loss-exit.ts', [mode], { timeoutMs: 60_000 });
      assert.ok(!job.timedOut && job.status !== null && job.status !== 0, describeJob(job));
      assert.ok(job.seconds < 20, `took ${job.seconds.toFixed(1)} s\n${describeJob(job)}`);
      assert.match(job.stderr, /mbvr\/mpi: rank 1 called finalize\(\) but rank 0 called allGather\(Uint8Array of \d+, counts\): a rank that finalizes/, describeJob(job));
      assert.doesNotMatch(job.stdout, /UNEXPECTED/, describeJob(job));
    });

  it('finalize() while a loss is pending rejects, and the loss completes on every rank', () => {
    const job = runJob(2, 'test/mpi/loss-exit.ts', ['finalize'], { timeoutMs: 60_000 });
    assert.equal(job.status, 0, describeJob(job));
    assert.match(job.stdout, /rank 1 finalize: mbvr\/mpi: rank 1: finalize\(\) while a data-parallel loss is in progress; await the loss first/, describeJob(job));
    const losses = [...job.stdout.matchAll(/rank (\d) loss (\S+)/g)].map((m) => m[2]);
    assert.equal(losses.length, 2, describeJob(job));
    assert.equal(losses[0], losses[1]);
  });
});
