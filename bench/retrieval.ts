// topK and retrievalMetrics at retrieval scale: rows queries against a cols-row gallery,
// D = dim, streamed (the rows x cols score matrix is never held).
//   node --import tsx bench/retrieval.ts [rows] [cols] [dim] [k]     (default 10000 1000000 256 10)
// Prints wall seconds, GFLOP/s (2 rows cols dim per call) and the process CPU seconds of
// each call (wall > CPU / threads means the cores were shared with other work).
import * as os from 'node:os';
import { backends, retrievalMetrics, topK } from '../src/index';
import { printTable } from './timing';

const [rows, cols, dim, k] = [10000, 1000000, 256, 10].map((v, i) => Number(process.argv[2 + i] ?? v));

/** Deterministic pseudo-random rows with entries in [-0.5, 0.5). */
function rowsOf(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * dim);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

const queries = rowsOf(rows, 1);
const gallery = rowsOf(cols, 2);
const targets = Int32Array.from({ length: rows }, (_, i) => (i * 7919) % cols);
const flops = 2 * rows * cols * dim;

function timed(fn: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

const info = backends().cpu;
console.log(`# ${os.cpus()[0]?.model ?? 'cpu'}, ${info.threads} threads, ${info.simd}; ${new Date().toISOString()}`);
console.log(`# ${rows} queries x ${cols} gallery rows x D = ${dim}, k = ${k}: ${(flops / 1e12).toFixed(2)} TFLOP per call\n`);
const results: (string | number)[][] = [];
for (const [name, fn] of [
  [`topK (k = ${k})`, () => topK(queries, gallery, { rows, cols, dim, k })],
  ['retrievalMetrics (scattered targets)', () => retrievalMetrics(queries, gallery, { rows, cols, dim, targets })],
] as const) {
  const t = timed(fn);
  results.push([name, t.wall.toFixed(1), (flops / t.wall / 1e9).toFixed(0), t.cpu.toFixed(1)]);
}
printTable(['call', 'wall s', 'GFLOP/s', 'CPU s'], results);
