// One timing method for every benchmark: warm-up runs, then the median of timed runs.
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function timeMs(fn: () => void, { warmup = 1, runs = 5 } = {}): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}

/** The loss's essential work: 9 GEMM-equivalents of 2 * B^2 * D (3 logit products
 * forward, 6 gradient products backward; KERNEL-NOTES.md). Recomputing logits adds up
 * to 3 more, which this count leaves out: GFLOP/s from it are effective rates. */
export function lossFlops(batch: number, dim: number): number {
  return 9 * 2 * batch * batch * dim;
}

export function printTable(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const width = header.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padStart(width[c])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${width.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`);
  for (const r of rows) console.log(line(r.map(String)));
}
