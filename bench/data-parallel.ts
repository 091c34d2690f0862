// The data-parallel loss against one process on the same cores, side by side: P ranks x
// 1 thread (mpirun) against 1 process x P threads, alternated in fresh processes so that
// both see the same machine load; the per-rank time spent in collectives, the bytes each
// rank moves per call, and from them a model of larger jobs (BENCHMARKS.md).
//
//   node --import tsx bench/data-parallel.ts [--batch 4096] [--dim 512] [--ranks 2]
//        [--rounds 3] [--reps 3] [--tcp]
//
// Needs Open MPI (mpirun) and the MPI addon. As root, mpirun needs
// OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (set here).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { CommData, Communicator, ReduceOp } from '../src/communicator';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '4096' },
    dim: { type: 'string', default: '512' },
    ranks: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    reps: { type: 'string', default: '3' },
    tcp: { type: 'boolean', default: false },
    role: { type: 'string' }, // internal: 'rank' (under mpirun) or 'single'
  },
});
const B = Number(values.batch), D = Number(values.dim), P = Number(values.ranks), reps = Number(values.reps);
const root = path.join(__dirname, '..');

function inputs(rows: number, row0: number) {
  // Deterministic rows (the same global batch in every process), unit scale.
  const make = (salt: number, k = 1) => {
    const a = new Float32Array(rows * k * D);
    for (let i = 0; i < a.length; i++) a[i] = Math.sin((row0 * k * D + i) * 0.618 + salt) / Math.sqrt(D);
    return a;
  };
  return { batch: rows, dim: D, query: make(1), fused: make(2), visual: make(3), text: make(4), shuffled: make(5) };
}

/** Times spent in, and payload bytes passed through, each collective of a communicator. */
function metered(comm: Communicator) {
  const m = { seconds: 0, sent: 0, received: 0 };
  const time = async <T>(sent: number, promise: Promise<T & CommData>, received: (r: CommData) => number) => {
    const t = process.hrtime.bigint();
    const r = await promise;
    m.seconds += Number(process.hrtime.bigint() - t) / 1e9;
    m.sent += sent;
    m.received += received(r);
    return r;
  };
  // Payload a rank sends and receives, as ring algorithms move it: allGather, each rank's
  // part to every other rank; reduce-scatter, every other rank's share of its array;
  // allReduce, a reduce-scatter then an allGather of the result.
  const share = (n: number) => (n * (comm.size - 1)) / comm.size;
  const wrapped: Communicator = {
    rank: comm.rank,
    size: comm.size,
    allGather: (d, counts) => time(d.byteLength, comm.allGather(d, counts), (r) => r.byteLength - d.byteLength),
    allReduce: (d, op?: ReduceOp) => time(share(d.byteLength) * 2, comm.allReduce(d, op), (r) => share(r.byteLength) * 2),
    reduceScatter: (d, counts) => time(share(d.byteLength), comm.reduceScatter(d, counts), (r) => r.byteLength * (comm.size - 1)),
    broadcast: (d, root) => comm.broadcast(d, root),
    barrier: () => comm.barrier(),
  };
  return { comm: wrapped, m };
}

async function rank(): Promise<void> {
  const { init } = await import('../src/mpi');
  const { mbvrLoss } = await import('../src/index');
  const world = await init();
  const b = Math.floor(B / world.size) + (world.rank < B % world.size ? 1 : 0);
  const row0 = Math.floor(B / world.size) * world.rank + Math.min(world.rank, B % world.size);
  const local = inputs(b, row0);
  const { comm, m } = metered(world);
  await mbvrLoss(local, { comm, threads: 1 }); // warm-up
  const times: number[] = [];
  const start = { ...m };
  for (let r = 0; r < reps; r++) {
    await world.barrier();
    const t = process.hrtime.bigint();
    await mbvrLoss(local, { comm, threads: 1 });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    times.push(Number((await world.allReduce(Float64Array.of(ms), 'max'))[0])); // the slowest rank's
  }
  const perCall = { seconds: (m.seconds - start.seconds) / reps, sent: (m.sent - start.sent) / reps, received: (m.received - start.received) / reps };
  const all = await world.allGather(Float64Array.of(perCall.seconds * 1000, perCall.sent, perCall.received));
  if (world.rank === 0)
    console.log(`RESULT ${JSON.stringify({ ms: Math.min(...times), comm: Array.from(all) })}`);
}

async function single(): Promise<void> {
  const { mbvrLossSync } = await import('../src/index');
  const whole = inputs(B, 0);
  mbvrLossSync(whole, { threads: P });
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = process.hrtime.bigint();
    mbvrLossSync(whole, { threads: P });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  console.log(`RESULT ${JSON.stringify({ ms: Math.min(...times) })}`);
}

function run(args: string[], mpirun: boolean): { ms: number; comm?: number[] } {
  const self = [process.execPath, '--import', 'tsx', path.join(__dirname, 'data-parallel.ts'), '--batch', String(B), '--dim', String(D), '--ranks', String(P), '--reps', String(reps)];
  const transport = values.tcp ? ['--mca', 'btl', 'tcp,self', '--mca', 'btl_tcp_if_include', 'lo'] : [];
  const [cmd, ...rest] = mpirun ? ['mpirun', '--oversubscribe', ...transport, '-np', String(P), ...self, ...args] : [...self, ...args];
  const r = spawnSync(cmd, rest, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' },
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no result (status ${r.status})\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice(7));
}

async function main(): Promise<void> {
  if (values.role === 'rank') return rank();
  if (values.role === 'single') return single();
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const singles: number[] = [], ranks: number[] = [];
  let comm: number[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    singles.push(run(['--role', 'single'], false).ms);
    const r = run(['--role', 'rank'], true);
    ranks.push(r.ms);
    comm = r.comm!;
    console.log(`round ${round + 1}: 1 process x ${P} threads ${singles.at(-1)!.toFixed(0)} ms | ${P} ranks x 1 thread ${ranks.at(-1)!.toFixed(0)} ms`);
  }
  const s = median(singles), d = median(ranks);
  console.log(`\nB = ${B}, D = ${D}, ${P} ranks over ${values.tcp ? 'TCP (loopback)' : 'shared memory'}, medians of ${values.rounds} rounds (best of ${reps} calls each)`);
  console.log(`| 1 process x ${P} threads | ${P} ranks x 1 thread | ratio |\n|---:|---:|---:|\n| ${s.toFixed(0)} ms | ${d.toFixed(0)} ms | ${(d / s).toFixed(2)}x |`);
  console.log('\nper rank and call (last round): ms waiting in collectives, MB sent, MB received');
  for (let r = 0; r < P; r++)
    console.log(`  rank ${r}: ${comm[3 * r].toFixed(1)} ms, ${(comm[3 * r + 1] / 1e6).toFixed(1)} MB, ${(comm[3 * r + 2] / 1e6).toFixed(1)} MB`);
}

void main();
