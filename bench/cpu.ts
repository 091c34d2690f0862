// `npm run bench`: the CPU backend's forward + backward time, GFLOP/s and peak RSS at
// B in {1024, 4096} x D in {256, 512}, K = 1. Each size runs in its own child process so
// that its peak RSS is its own. Usage: npm run bench [-- --runs 5 --threads N]
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { lossFlops, printTable, timeMs } from './timing';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

interface Measurement {
  ms: number;
  rssGrowth: number;
  peakRss: number;
}

if (process.env.MBVR_BENCH_CHILD) {
  // Child: one size, print one JSON line.
  const [batch, dim, runs, threads] = process.env.MBVR_BENCH_CHILD.split(',').map(Number);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { mbvrLossSync } = require('../src/index') as typeof import('../src/index');
  let seed = 12345;
  const rows = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    return a;
  };
  const inputs = { batch, dim, query: rows(batch * dim), fused: rows(batch * dim), visual: rows(batch * dim), text: rows(batch * dim), shuffled: rows(batch * dim) };
  const options = { backend: 'cpu', threads: threads || undefined } as const;
  // Peak RSS of one call (inputs allocated before), then the timed runs.
  const before = process.resourceUsage().maxRSS * 1024;
  mbvrLossSync(inputs, options);
  const peak = process.resourceUsage().maxRSS * 1024;
  const ms = timeMs(() => mbvrLossSync(inputs, options), { warmup: 0, runs });
  const m: Measurement = { ms, rssGrowth: peak - before, peakRss: peak };
  console.log(JSON.stringify(m));
} else {
  const runs = flag('runs', 5);
  const threads = flag('threads', 0);
  const rows: (string | number)[][] = [];
  for (const batch of [1024, 4096])
    for (const dim of [256, 512]) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', __filename], {
        env: { ...process.env, MBVR_BENCH_CHILD: `${batch},${dim},${runs},${threads}` },
        encoding: 'utf8',
      });
      const m = JSON.parse(out.trim().split('\n').pop()!) as Measurement;
      const mib = (b: number) => (b / 2 ** 20).toFixed(0);
      rows.push([batch, dim, 1, m.ms.toFixed(1), (lossFlops(batch, dim) / m.ms / 1e6).toFixed(1), mib(m.peakRss), mib(m.rssGrowth)]);
    }
  console.log(`mbvr CPU backend, forward + backward, median of ${runs} runs; ${os.cpus().length} cores (${os.cpus()[0]?.model}), threads ${threads || 'all'}; ${new Date().toISOString().slice(0, 10)}`);
  console.log('GFLOP/s counts 9 GEMM-equivalents of 2*B^2*D (the essential work); peak RSS is the whole process after one call, growth is that call\'s above the inputs.');
  printTable(['B', 'D', 'K', 'ms', 'GFLOP/s', 'peak RSS MiB', 'RSS growth MiB'], rows);
}
