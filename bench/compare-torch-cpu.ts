// Our CPU loss against PyTorch's autograd of the same loss (bench/torch_loss.py), forward +
// backward, on the same cores, measured ALTERNATELY in one run so that both sides see the
// same machine load. Each measurement is a fresh child process (ours: node; theirs:
// /usr/bin/python3), so peak-RSS growth is clean: VmHWM after the first call minus VmRSS
// once the inputs exist (outputs, gradients and every temporary count; inputs do not).
//
// Also times our opt-in bf16 precision (precision: 'bf16', the 2e-2 bound of docs/math.md §5; products at
// twice the fp32 rate with AVX512-BF16) in the same alternation, reported apart: the fp32
// columns are the like-for-like comparison. --no-bf16 skips it.
//
// Also times the straightforward TypeScript implementation (src/reference.ts: float64,
// full B x B matrices) at a small size, against ours at that size, and extrapolates it by
// flops (B^2 D) to the large size.
//
//   node --import tsx bench/compare-torch-cpu.ts [--rounds 3] [--reps 3] [--threads N]
//        [--sizes 4096x512,1024x256,2048x512,8192x256] [--no-torch] [--no-bf16] [--no-naive]
//
// Needs: apt-get install -y python3-torch libopenblas0-pthread (PyTorch with OpenBLAS for
// /usr/bin/python3). MBVR_ADDON_PATH selects the addon as everywhere else.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median, printTable } from './timing';

interface Measurement {
  ms: number[];
  loss: number;
  rss_growth_mib: number;
  error?: string;
}

const PYTHON = '/usr/bin/python3';
const TORCH_SCRIPT = path.join(__dirname, 'torch_loss.py');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function statusMiB(field: 'VmRSS' | 'VmHWM'): number {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// Uniform [-0.5, 0.5) rows from a small LCG: reproducible without a dependency.
function randomRows(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

// ---- child: one measurement of our loss ----------------------------------------------

function childOurs(): void {
  const [B, D, K, threads, reps] = process.argv.slice(3, 8).map(Number);
  const precision = process.argv[8] as 'fp32' | 'bf16';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mbvr = require('..') as typeof import('../src/index');
  const inputs = {
    batch: B,
    dim: D,
    query: randomRows(B * D, 1),
    fused: randomRows(B * D, 2),
    visual: randomRows(B * D, 3),
    text: randomRows(B * D, 4),
    shuffled: randomRows(B * K * D, 5),
  };
  const before = statusMiB('VmRSS');
  const ms: number[] = [];
  let loss = 0;
  let growth = NaN;
  // Free the previous call's gradients before the next (as PyTorch does on `x.grad = None`),
  // so the peak is that of one call, not of garbage waiting for the collector.
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  for (let r = 0; r < reps; r++) {
    gc();
    const t0 = process.hrtime.bigint();
    const out = mbvr.mbvrLossSync(inputs, { backend: 'cpu', threads, temperature: 0.05, precision });
    if (out.precision !== precision) throw new Error(`ran ${out.precision}, not ${precision}`);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    loss = out.loss;
    // The peak of one call: later reps could add garbage the collector has not freed.
    if (r === 0) growth = statusMiB('VmHWM') - before;
  }
  process.stdout.write(JSON.stringify({ ms, loss, rss_growth_mib: growth }) + '\n');
}

// ---- parent -----------------------------------------------------------------------

function runOurs(B: number, D: number, K: number, threads: number, reps: number, precision = 'fp32'): Measurement {
  const args = [...[B, D, K, threads, reps].map(String), precision];
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', __filename, '--child-ours', ...args], {
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) return { ms: [], loss: NaN, rss_growth_mib: NaN, error: r.stderr.slice(-2000) };
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Measurement;
}

// The inputs our child generates, written once for PyTorch: the same numbers on both sides.
function inputsFile(B: number, D: number, K: number): string {
  const file = path.join(os.tmpdir(), `mbvr-bench-${B}x${D}x${K}.f32`);
  const fd = fs.openSync(file, 'w');
  for (const [n, seed] of [[B * D, 1], [B * D, 2], [B * D, 3], [B * D, 4], [B * K * D, 5]])
    fs.writeSync(fd, randomRows(n, seed));
  fs.closeSync(fd);
  return file;
}

function runTorch(B: number, D: number, K: number, threads: number, reps: number, file: string): Measurement {
  const cmd = JSON.stringify({ cmd: 'run', batch: B, dim: D, k: K, threads, reps, temperature: 0.05, inputs: file });
  const r = spawnSync(PYTHON, [TORCH_SCRIPT], {
    input: cmd + '\n',
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) },
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) return { ms: [], loss: NaN, rss_growth_mib: NaN, error: r.stderr.slice(-2000) };
  const reply = JSON.parse(r.stdout.trim().split('\n').pop() as string) as Measurement;
  return reply;
}

function fmt(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function naiveComparison(threads: number): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mbvr = require('..') as typeof import('../src/index');
  const B = 512, D = 128, K = 1;
  const inputs = {
    batch: B, dim: D,
    query: randomRows(B * D, 1), fused: randomRows(B * D, 2), visual: randomRows(B * D, 3),
    text: randomRows(B * D, 4), shuffled: randomRows(B * K * D, 5),
  };
  const t0 = process.hrtime.bigint();
  mbvr.referenceLoss(inputs, { temperature: 0.05 });
  const naiveMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const ours: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t1 = process.hrtime.bigint();
    mbvr.mbvrLossSync(inputs, { backend: 'cpu', threads });
    ours.push(Number(process.hrtime.bigint() - t1) / 1e6);
  }
  const oursMs = median(ours.slice(2));
  const scale = (4096 / B) ** 2 * (512 / D);
  console.log(`\nStraightforward TypeScript (src/reference.ts, float64, full B x B matrices), B=${B} D=${D} K=1:`);
  console.log(`  reference ${fmt(naiveMs)} ms, ours ${fmt(oursMs, 1)} ms: ${fmt(naiveMs / oursMs)}x at this size`);
  console.log(`  extrapolated by flops (x${scale}) to B=4096 D=512: reference ~${fmt((naiveMs * scale) / 1000, 1)} s`);
}

function main(): void {
  const threads = Number(arg('threads', String(os.availableParallelism?.() ?? os.cpus().length)));
  const rounds = Number(arg('rounds', '3'));
  const reps = Number(arg('reps', '3'));
  const sizes = arg('sizes', '4096x512,1024x256,2048x512,8192x256')
    .split(',')
    .map((s) => s.split('x').map(Number) as [number, number]);
  const withTorch = !process.argv.includes('--no-torch');
  const withBf16 = !process.argv.includes('--no-bf16');
  const K = 1;

  const sides = ['ours', 'PyTorch', ...(withBf16 ? ['ours bf16'] : [])].join(' / ');
  console.log(`threads=${threads}, ${rounds} rounds x ${reps} reps per side, alternating ${sides} (fresh process each)`);
  const header = ['B', 'D', 'ours ms', 'torch ms', 'torch/ours', 'ours RSS+ MiB', 'torch RSS+ MiB', 'ours GFLOP/s*', 'loss rel. diff',
    'bf16 ms', 'torch/bf16', 'bf16 RSS+ MiB', 'bf16 loss rel. diff'];
  const rows: string[][] = [];
  for (const [B, D] of sizes) {
    const ours: Measurement[] = [];
    const torch: Measurement[] = [];
    const bf16: Measurement[] = [];
    const file = withTorch ? inputsFile(B, D, K) : '';
    for (let round = 0; round < rounds; round++) {
      ours.push(runOurs(B, D, K, threads, reps));
      if (withTorch) torch.push(runTorch(B, D, K, threads, reps, file));
      if (withBf16) bf16.push(runOurs(B, D, K, threads, reps, 'bf16'));
    }
    if (file) fs.rmSync(file, { force: true });
    for (const m of [...ours, ...torch, ...bf16]) if (m.error) console.error(m.error);
    // The first rep of every process pays page faults and thread start-up: drop it.
    const steady = (ms: Measurement[]) => ms.flatMap((m) => (m.ms.length > 1 ? m.ms.slice(1) : m.ms));
    const oursMs = median(steady(ours));
    const torchMs = withTorch ? median(steady(torch)) : NaN;
    const bf16Ms = withBf16 ? median(steady(bf16)) : NaN;
    const lossDiff = (m: Measurement[]) =>
      m.length && torch.length ? (Math.abs(m[0].loss - torch[0].loss) / Math.abs(torch[0].loss)).toExponential(1) : '-';
    const gflops = (9 * 2 * B * B * D) / oursMs / 1e6;
    rows.push([
      String(B), String(D), fmt(oursMs), fmt(torchMs), fmt(torchMs / oursMs, 2),
      fmt(Math.max(...ours.map((m) => m.rss_growth_mib))), fmt(Math.max(...torch.map((m) => m.rss_growth_mib))),
      fmt(gflops, 1), lossDiff(ours),
      fmt(bf16Ms), fmt(torchMs / bf16Ms, 2), bf16.length ? fmt(Math.max(...bf16.map((m) => m.rss_growth_mib))) : '-', lossDiff(bf16),
    ]);
    console.log(rows[rows.length - 1].join('\t'));
  }
  console.log('');
  printTable(header, rows);
  console.log('* 9 GEMM-equivalents of 2 B^2 D flops over the whole call (the minimum any exact method needs).');
  if (!process.argv.includes('--no-naive')) naiveComparison(threads);
}

if (process.argv[2] === '--child-ours') childOurs();
else main();
