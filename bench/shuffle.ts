// modalityShuffle at scale: wall time and memory growth of one call, for label structures
// that take each construction (shifts, or the general plan + permutation split).
//   node --expose-gc --import tsx bench/shuffle.ts [batch] [k] [runs]   (default 10000000 4 3)
// Prints, per case, the median wall and CPU seconds of `runs` timed calls (after one
// warm-up; CPU well under wall means the cores were shared with other work) and the
// largest growth of resident memory over a call (the B x K result itself included).
//
// Measured 2026-11-29 (AMD EPYC, 2 cores shared with other work, Node 20.20.2), commit
// 3c4092d, B = 10^7, K = 4 (wall s / CPU s / RSS growth MiB, the 160 MB result included):
//   no labels 1.64 / 1.72 / 229;  all distinct 2.17 / 2.29 / 267;  pairs 2.70 / 2.78 / 288;
//   two groups of B/2 3.55 / 3.60 / 267;  0.6 B + distinct 3.45 / 3.54 / 255;
//   B/2 - 1 + distinct 3.36 / 3.46 / 315;  all equal 3.03 / 3.06 / 305.
// The general construction (K a large share of B), B = 2000, K = 1000: 2.2-2.6 s.
import * as os from 'node:os';
import { modalityShuffle } from '../src/shuffle';
import { median, printTable } from './timing';

const [batch, k, runs] = [10_000_000, 4, 3].map((v, i) => Number(process.argv[2 + i] ?? v));
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** Labels: `shape(i)` for row i, the rows then placed at random. */
function labelsOf(shape: (i: number) => number): Int32Array {
  const labels = new Int32Array(batch);
  for (let i = 0; i < batch; i++) labels[i] = shape(i);
  let s = 12345;
  for (let i = batch - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [labels[i], labels[j]] = [labels[j], labels[i]];
  }
  return labels;
}

const half = Math.floor(batch / 2);
const cases: [string, Int32Array | undefined][] = [
  ['no labels', undefined],
  ['all distinct', labelsOf((i) => i * 7 - 1e9)],
  ['pairs (duplicates)', labelsOf((i) => i >> 1)],
  ['two groups of B/2', labelsOf((i) => (i < half ? 0 : 1))],
  ['one group of 0.6 B, rest distinct', labelsOf((i) => (i < 0.6 * batch ? -1 : i))],
  ['one group of B/2 - 1, rest distinct', labelsOf((i) => (i < half - 1 ? -1 : i))],
  ['all equal', labelsOf(() => 3)],
];

console.log(`# modalityShuffle, B = ${batch}, K = ${k}; ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; ${new Date().toISOString()}\n`);
const rows: (string | number)[][] = [];
for (const [name, labels] of cases) {
  modalityShuffle(batch, { k, labels, seed: 0 }); // warm-up
  const times: number[] = [];
  const cpu: number[] = [];
  let growth = 0;
  let same = 0;
  for (let r = 0; r < runs; r++) {
    gc();
    const rss0 = process.memoryUsage().rss;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const pi = modalityShuffle(batch, { k, labels, seed: r + 1 });
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
    growth = Math.max(growth, process.memoryUsage().rss - rss0);
    same = pi.sameLabelNegatives;
  }
  rows.push([name, median(times).toFixed(2), median(cpu).toFixed(2), (growth / 2 ** 20).toFixed(0), same]);
}
printTable(['labels', 'wall s (median)', 'CPU s (median)', 'RSS growth (MiB)', 'same-label negatives'], rows);
