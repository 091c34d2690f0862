// Splitting a test case's global batch by rows, as data-parallel ranks hold it.
import type { MbvrInputs, MbvrOptions } from '../src/types';
import { randInt, type Case, type Random } from './helpers';

/** Rank r's rows [start, start + rows[r]) of every per-row input and option. */
export function shard(c: Case, options: MbvrOptions, rows: readonly number[], rank: number): [MbvrInputs, MbvrOptions] {
  const start = rows.slice(0, rank).reduce((a, b) => a + b, 0);
  const end = start + rows[rank];
  const D = c.dim, K = c.k;
  const inputs: MbvrInputs = {
    batch: rows[rank],
    dim: D,
    query: c.query.slice(start * D, end * D),
    fused: c.fused.slice(start * D, end * D),
    visual: c.visual.slice(start * D, end * D),
    text: c.text.slice(start * D, end * D),
    shuffled: c.shuffled.slice(start * K * D, end * K * D),
  };
  const o: MbvrOptions = { ...options };
  if (options.margin instanceof Float32Array) o.margin = options.margin.slice(start, end);
  if (options.labels) o.labels = options.labels.slice(start, end);
  return [inputs, o];
}

/** B rows over `size` ranks at random cut points (ranks may get none). */
export function randomSplit(random: Random, batch: number, size: number): number[] {
  const cuts = Array.from({ length: size - 1 }, () => randInt(random, 0, batch)).sort((a, b) => a - b);
  return [...cuts, batch].map((c, i) => c - (i === 0 ? 0 : cuts[i - 1]));
}

export function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
