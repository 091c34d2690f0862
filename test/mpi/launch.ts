// Launching test scripts under mpirun, for the test files that need MPI
// (test/mpi-comm.test.ts, test/mpi-loss.test.ts): whether the tests can run here (and why
// not), and `mpirun -np N node --import tsx <script>` over shared memory or TCP.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
// As mbvr/mpi finds it: MBVR_MPI_ADDON_PATH (e.g. one built against another MPI), or the build's.
export const mpiAddon = process.env.MBVR_MPI_ADDON_PATH
  ? path.resolve(process.env.MBVR_MPI_ADDON_PATH)
  : path.join(root, 'build', 'Release', 'mpi', 'mbvr_mpi.node');

export function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, command);
    if (dir && fs.existsSync(file)) return file;
  }
  return undefined;
}

const mpirun = onPath('mpirun');
export const openMpi = mpirun !== undefined && /Open MPI/i.test(execFileSync(mpirun, ['--version'], { encoding: 'utf8' }));
/** Why MPI tests cannot run here, or false. */
export const skip: string | false = !mpirun
  ? 'skipped: mpirun not found on PATH (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)'
  : !fs.existsSync(mpiAddon)
    ? `skipped: the MPI addon was not built (${mpiAddon} is missing: CMake found no MPI; install one, then npx cmake-js compile)`
    : false;

export interface Job {
  status: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** `mpirun -np <np> node --import tsx <script> <args>`; tcp: Open MPI's TCP transport on
 * the loopback interface instead of shared memory. */
export function runJob(
  np: number,
  script: string,
  args: string[],
  { tcp = false, timeoutMs = 90_000, env: extraEnv = {} as Record<string, string> } = {},
): Job {
  const flags = openMpi ? ['--oversubscribe', ...(tcp ? ['--mca', 'btl', 'tcp,self', '--mca', 'btl_tcp_if_include', 'lo'] : [])] : [];
  // A preloaded sanitizer runtime (npm run test:asan) is for the ranks, not for mpirun:
  // Open MPI's launcher has memory errors of its own on the abort path.
  const { LD_PRELOAD: preload, ...env } = process.env;
  if (preload && openMpi) flags.push('-x', `LD_PRELOAD=${preload}`);
  const started = process.hrtime.bigint();
  const r = spawnSync(mpirun!, [...flags, '-np', String(np), process.execPath, '--import', 'tsx', path.join(root, script), ...args], {
    cwd: root,
    env: { ...env, ...extraEnv, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' },
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGTERM', // mpirun passes it on to the ranks
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { status: r.status, signal: r.signal, timedOut, stdout: r.stdout ?? '', stderr: r.stderr ?? '', seconds };
}

export function describeJob(job: Job): string {
  return `status ${job.status}, signal ${job.signal}, ${job.seconds.toFixed(1)} s${job.timedOut ? ' (timed out)' : ''}\n` +
    `--- stdout\n${job.stdout.slice(-3000)}\n--- stderr\n${job.stderr.slice(-3000)}`;
}
