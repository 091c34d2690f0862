// mbvr/mpi under mpirun: every collective at 1 to 4 ranks over shared memory and TCP
// (test/mpi/collectives.ts checks results against values computed locally and reports
// a digest of everything every rank must hold identically), and the job's end when a
// rank fails (test/mpi/faults.ts). Skips, saying why, without mpirun or the MPI addon.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { suiteSeed } from './helpers';
import { parseResults } from './mpi/common';
import { describeJob, mpiAddon, onPath, openMpi, runJob, skip } from './mpi/launch';

const root = path.join(__dirname, '..');
const addon = mpiAddon;
if (skip) console.log(`# mpi-comm: ${skip}`);

describe('mbvr/mpi collectives under mpirun', { skip, timeout: 600_000 }, () => {
  const transports = openMpi ? (['shared memory', 'tcp'] as const) : (['default'] as const);
  for (const transport of transports)
    for (const np of [1, 2, 3, 4]) {
      // Optional parts, spread over the runs: init() from a worker thread, and an
      // explicit finalize() (the other runs finalize at exit).
      const extra = [...(np === 1 && transport !== 'tcp' ? ['worker'] : []), ...(np === 3 ? ['finalize'] : [])];
      it(`${np} rank(s) over ${transport}: results, identical bits on every rank, errors${extra.length ? `, ${extra.join(', ')}` : ''}`, () => {
        const seed = suiteSeed + np;
        const job = runJob(np, 'test/mpi/collectives.ts', [String(seed), ...extra], { tcp: transport === 'tcp' });
        assert.equal(job.status, 0, describeJob(job));
        const results = parseResults(job.stdout);
        assert.equal(results.length, np, describeJob(job));
        results.forEach((r, i) => {
          assert.equal(r.rank, i);
          assert.equal(r.size, np);
          assert.deepEqual(r.failures, [], `rank ${i} (replay: seed ${seed})`);
          assert.ok((r.checks as number) > 150, `rank ${i} ran ${r.checks} checks`);
          assert.ok(['funneled', 'serialized', 'multiple'].includes(r.threadLevel as string), `thread level ${r.threadLevel}`);
          // init() turns UCX's libc patching off (docs/mpi.md, MPI quirks): it raced with Node's threads.
          assert.equal(r.ucxMemEvents, 'no');
        });
        assert.equal(new Set(results.map((r) => r.digest)).size, 1, `digests differ: ${results.map((r) => r.digest).join(' ')}`);
      });
    }
});

describe('mbvr/mpi when a rank fails while another waits in a collective', { skip, timeout: 600_000 }, () => {
  const scenarios: [string, string, { status?: number; stderr?: RegExp[] }][] = [
    ['throw', 'throws an uncaught exception', { status: 1, stderr: [/planned failure \(throw\)/, /mbvr\/mpi: rank 1 exits with code 1 \(an uncaught exception\)/] }],
    ['rejection', 'leaves a promise rejection unhandled', { status: 1, stderr: [/planned unhandled rejection/, /rank 1 exits with code 1 \(an uncaught exception\)/] }],
    ['exit-code', 'calls process.exit(3)', { status: 3, stderr: [/mbvr\/mpi: rank 1 exits with code 3\n/] }],
    ['abort', 'calls comm.abort(5)', { status: 5 }],
    ['busy', 'throws while its own collective is in progress', { status: 1, stderr: [/planned failure \(busy\)/] }],
    ['sync-wait', 'throws while rank 0 blocks in comm.sync.barrier()', { status: 1, stderr: [/planned failure \(sync-wait\)/] }],
    // Nothing runs in a killed process: the MPI runtime ends the job.
    ['signal', 'is killed by SIGKILL', {}],
  ];
  for (const [scenario, what, expect] of scenarios)
    it(`rank 1 ${what}: the job ends, non-zero, within 20 s`, () => {
      const job = runJob(2, 'test/mpi/faults.ts', [scenario], { timeoutMs: 40_000 });
      assert.ok(!job.timedOut && job.status !== null && job.status !== 0, describeJob(job));
      assert.ok(job.seconds < 20, `took ${job.seconds.toFixed(1)} s\n${describeJob(job)}`);
      assert.match(job.stdout, /rank 0 waiting/, describeJob(job));
      assert.match(job.stdout, new RegExp(`rank 1 fails now \\(${scenario}\\)`), describeJob(job));
      assert.doesNotMatch(job.stdout, /UNEXPECTED/, describeJob(job));
      if (expect.status !== undefined) {
        // Open MPI ends a job by itself when a rank exits without MPI_Finalize, so the
        // line below is what shows that mbvr/mpi called MPI_Abort (which other launchers
        // need); Open MPI's own notice is not always printed when ranks die at once.
        assert.match(job.stderr, new RegExp(`mbvr/mpi: rank 1 calls MPI_Abort\\(MPI_COMM_WORLD, ${expect.status}\\)`), describeJob(job));
        if (openMpi) assert.equal(job.status, expect.status, describeJob(job));
      }
      for (const pattern of expect.stderr ?? []) assert.match(job.stderr, pattern, describeJob(job));
    });
});

describe('mbvr/mpi and UCX', { skip, timeout: 120_000 }, () => {
  it("init() keeps UCX from patching libc's memory functions (it raced with Node's threads); UCX_MEM_EVENTS=yes still may", () => {
    const job = runJob(2, 'test/mpi/ucx-hooks.ts', [], { env: { UCX_MEM_LOG_LEVEL: 'debug' } });
    assert.equal(job.status, 0, describeJob(job));
    assert.match(job.stdout, /rank 1 started; UCX_MEM_EVENTS=no/, describeJob(job));
    assert.doesNotMatch(job.stdout + job.stderr, /installing \w+ hook for/, describeJob(job));
    // The user's own setting wins; where the MPI links UCX (MPICH), that run shows the
    // patching, so the check above is one that can fail.
    const asked = runJob(2, 'test/mpi/ucx-hooks.ts', [], { env: { UCX_MEM_LOG_LEVEL: 'debug', UCX_MEM_EVENTS: 'yes' } });
    assert.equal(asked.status, 0, describeJob(asked));
    assert.match(asked.stdout, /rank 1 started; UCX_MEM_EVENTS=yes/, describeJob(asked));
    const linksUcx = onPath('ldd') !== undefined && /libucs/.test(execFileSync('ldd', [addon], { encoding: 'utf8' }));
    if (linksUcx) assert.match(asked.stdout + asked.stderr, /installing \w+ hook for/, describeJob(asked));
  });
});

describe('the main addon', () => {
  const main = path.join(root, 'build', 'Release', 'mbvr.node');
  const noLdd = process.platform !== 'linux' || !onPath('ldd') || !fs.existsSync(main);
  it('does not link libmpi (only mbvr_mpi.node does)', { skip: noLdd && 'skipped: needs Linux, ldd and build/Release/mbvr.node' }, () => {
    assert.doesNotMatch(execFileSync('ldd', [main], { encoding: 'utf8' }), /libmpi/);
    if (fs.existsSync(addon)) assert.match(execFileSync('ldd', [addon], { encoding: 'utf8' }), /libmpi/);
  });
});

describe('mbvr/mpi without its addon', () => {
  const solutions = /apt-get install openmpi-bin libopenmpi-dev[\s\S]*MBVR_BUILD_FROM_SOURCE=1 npm rebuild mbvr/;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-mpi-'));
  const broken = path.join(work, 'broken.node');
  fs.writeFileSync(broken, 'not a shared library');

  function load(addonPath: string): string {
    return execFileSync(process.execPath, ['--import', 'tsx', path.join(root, 'test', 'mpi', 'load-error.ts')], {
      cwd: root,
      env: { ...process.env, MBVR_MPI_ADDON_PATH: addonPath },
      encoding: 'utf8',
    });
  }

  it('imports without throwing; init() rejects, saying that it was not built and what to do', () => {
    const missing = path.join(work, 'missing', 'mbvr_mpi.node');
    const out = load(missing);
    assert.match(out, /^imported: function$/m);
    assert.match(out, new RegExp(`init\\(\\) rejected: Error: mbvr/mpi: the MPI addon was not built \\(${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} does not exist\\)`));
    assert.match(out, solutions);
  });

  it('init() rejects with the loader\'s reason when the addon does not load', () => {
    const out = load(broken);
    assert.match(out, /init\(\) rejected: Error: mbvr\/mpi: could not load the MPI addon .*broken\.node\.\nReason: /);
    assert.match(out, solutions);
    fs.rmSync(work, { recursive: true, force: true });
  });
});
