// mbvr/mpi at 2 ranks: latency of a small allReduce (and a barrier) and bandwidth of an
// allGather of 4096 x 512 floats per rank, over shared memory and over TCP on the
// loopback interface (Open MPI). Run it directly; it starts `mpirun -np 2` itself:
//   node --import tsx bench/mpi-collectives.ts
// Times are medians of timed batches after warm-up (bench/timing.ts's method).
import { spawnSync } from 'node:child_process';
import { init, type MpiCommunicator } from '../src/mpi';
import { median, printTable } from './timing';

const ROWS = 4096;
const DIM = 512;

/** Microseconds per call: the median over `batches` batches of `per` calls. */
async function perCall(fn: () => Promise<unknown> | unknown, { warmup = 200, batches = 15, per = 100 } = {}): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < per; i++) await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e3 / per);
  }
  return median(times);
}

async function rank(): Promise<void> {
  const comm: MpiCommunicator = await init();
  const small = new Float32Array(8).fill(comm.rank);
  const big = new Float32Array(ROWS * DIM).fill(comm.rank);
  const counts = Array.from({ length: comm.size }, () => big.length);
  const result = {
    allReduceAsyncUs: await perCall(() => comm.allReduce(small, 'sum')),
    allReduceSyncUs: await perCall(() => comm.sync.allReduce(small, 'sum')),
    barrierAsyncUs: await perCall(() => comm.barrier()),
    allGatherMs: (await perCall(() => comm.allGather(big), { warmup: 3, batches: 15, per: 2 })) / 1e3,
    allGatherCountsMs: (await perCall(() => comm.allGather(big, counts), { warmup: 3, batches: 15, per: 2 })) / 1e3,
    // The machine's own speed, same run: copying one rank's 8 MiB in JS.
    sliceMs: (await perCall(() => big.slice(), { warmup: 3, batches: 15, per: 2 })) / 1e3,
  };
  if (comm.rank === 0) console.log(`BENCH ${JSON.stringify({ ...result, size: comm.size, library: comm.library })}`);
}

function launch(): void {
  const transports: [string, string[]][] = [
    ['shared memory', []],
    ['TCP (loopback)', ['--mca', 'btl', 'tcp,self', '--mca', 'btl_tcp_if_include', 'lo']],
  ];
  const rows: (string | number)[][] = [];
  let library = '';
  for (const [name, flags] of transports) {
    const r = spawnSync('mpirun', ['--oversubscribe', ...flags, '-np', '2', process.execPath, '--import', 'tsx', __filename], {
      env: { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' },
      encoding: 'utf8',
      timeout: 300_000,
    });
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('BENCH '));
    if (r.status !== 0 || !line) {
      console.error(`mpirun over ${name} failed (status ${r.status}):\n${r.stderr}`);
      process.exit(1);
    }
    const b = JSON.parse(line.slice(6)) as Record<string, number | string>;
    library = b.library as string;
    const ms = b.allGatherMs as number;
    const mib = (ROWS * DIM * 4) / 2 ** 20;
    rows.push([
      name,
      (b.allReduceAsyncUs as number).toFixed(1),
      (b.allReduceSyncUs as number).toFixed(1),
      (b.barrierAsyncUs as number).toFixed(1),
      ms.toFixed(2),
      // Each rank receives the other's 8 MiB; the result is 16 MiB.
      ((mib / ms) * 1e3 / 1024).toFixed(2),
      (b.allGatherCountsMs as number).toFixed(2),
      (b.sliceMs as number).toFixed(2),
    ]);
  }
  console.log(`mbvr/mpi, 2 ranks on one machine, ${library}; ${new Date().toISOString().slice(0, 10)}`);
  printTable(
    ['transport', 'allReduce 8 floats async (us)', 'sync (us)', 'barrier async (us)', `allGather ${ROWS}x${DIM} floats (ms)`, 'received GiB/s per rank', 'with counts (ms)', '8 MiB slice() (ms)'],
    rows,
  );
}

const underMpirun = process.env.OMPI_COMM_WORLD_SIZE !== undefined || process.env.PMI_SIZE !== undefined;
if (underMpirun) void rank();
else launch();
