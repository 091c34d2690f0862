// The demo's metrics, in one place: recall@k, R_vt and the MS-negative AUC, as docs/evaluation.md
// defines them. They come from mbvr's own evaluation API (retrievalMetrics,
// modalityBalance, scoreSeparation) when the loaded addon has it; an addon built before
// those functions existed falls back to the plain implementations below, which follow
// the same definitions, and the demo says which one it used.
import * as mbvr from '../../src/index';

export interface Retrieval {
  recall: { 1: number; 5: number; 10: number };
  /** each query's target rank, 1 = first */
  ranks: Int32Array;
}

export interface Metrics {
  source: 'mbvr' | 'fallback';
  retrieval(queries: Float32Array, gallery: Float32Array, rows: number, cols: number, dim: number, targets: Int32Array): Retrieval;
  /** R_vt per row and its median */
  balance(visual: Float32Array, text: Float32Array, fused: Float32Array, rows: number, dim: number): { rvt: Float32Array; median: number };
  /** positive and MS-negative cosines and P(positive > MS negative of the same row) */
  separation(query: Float32Array, fused: Float32Array, shuffled: Float32Array, rows: number, dim: number): { positive: Float32Array; shuffled: Float32Array; auc: number };
}

// ---- mbvr's API -------------------------------------------------------------------------

const fromPackage: Metrics = {
  source: 'mbvr',
  retrieval(queries, gallery, rows, cols, dim, targets) {
    const out = mbvr.retrievalMetrics(queries, gallery, { rows, cols, dim, targets, ks: [1, 5, 10] });
    return { recall: { 1: out.recall[1], 5: out.recall[5], 10: out.recall[10] }, ranks: out.ranks };
  },
  balance(visual, text, fused, rows, dim) {
    const out = mbvr.modalityBalance({ visual, text, fused, batch: rows, dim });
    return { rvt: out.rvt, median: out.summary.median };
  },
  separation(query, fused, shuffled, rows, dim) {
    return mbvr.scoreSeparation({ query, fused, shuffled, batch: rows, dim });
  },
};

// ---- the fallback ------------------------------------------------------------------------

function unitRows(x: Float32Array, rows: number, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[i * dim + d] ** 2;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let d = 0; d < dim; d++) out[i * dim + d] = x[i * dim + d] * inv;
  }
  return out;
}

function dot(a: Float32Array, i: number, b: Float32Array, j: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += a[i * dim + d] * b[j * dim + d];
  return s;
}

/** numpy's default percentile: linear between the closest ranks. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const x = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (x - lo) * (sorted[hi] - sorted[lo]);
}

const fallback: Metrics = {
  source: 'fallback',
  retrieval(queries, gallery, rows, cols, dim, targets) {
    const q = unitRows(queries, rows, dim);
    const g = unitRows(gallery, cols, dim);
    const ranks = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      const t = targets[i];
      const st = Math.fround(dot(q, i, g, t, dim));
      let rank = 1;
      for (let j = 0; j < cols; j++) {
        if (j === t) continue;
        const s = Math.fround(dot(q, i, g, j, dim));
        if (s > st || (s === st && j < t)) rank++;
      }
      ranks[i] = rank;
    }
    const at = (k: number) => ranks.filter((r) => r <= k).length / rows;
    return { recall: { 1: at(1), 5: at(5), 10: at(10) }, ranks };
  },
  balance(visual, text, fused, rows, dim) {
    const v = unitRows(visual, rows, dim);
    const t = unitRows(text, rows, dim);
    const m = unitRows(fused, rows, dim);
    const rvt = new Float32Array(rows);
    for (let i = 0; i < rows; i++) {
      const ct = dot(t, i, m, i, dim);
      rvt[i] = ct === 0 ? NaN : dot(v, i, m, i, dim) / ct;
    }
    const defined = [...rvt].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    return { rvt, median: percentile(defined, 50) };
  },
  separation(query, fused, shuffled, rows, dim) {
    const k = shuffled.length / (rows * dim);
    const q = unitRows(query, rows, dim);
    const m = unitRows(fused, rows, dim);
    const s = unitRows(shuffled, rows * k, dim);
    const positive = new Float32Array(rows);
    const negative = new Float32Array(rows * k);
    let wins = 0;
    for (let i = 0; i < rows; i++) {
      positive[i] = dot(q, i, m, i, dim);
      for (let j = 0; j < k; j++) {
        let c = 0;
        for (let d = 0; d < dim; d++) c += q[i * dim + d] * s[(i * k + j) * dim + d];
        negative[i * k + j] = c;
        wins += positive[i] > negative[i * k + j] ? 1 : positive[i] === negative[i * k + j] ? 0.5 : 0;
      }
    }
    return { positive, shuffled: negative, auc: wins / (rows * k) };
  },
};

// ---- the switch ---------------------------------------------------------------------------

/** mbvr's evaluation API when the loaded addon provides it, else the fallback. */
export function chooseMetrics(): Metrics {
  const api = mbvr as Partial<typeof mbvr>;
  if (typeof api.retrievalMetrics !== 'function') return fallback;
  try {
    const one = new Float32Array([1, 0]);
    mbvr.retrievalMetrics(one, one, { rows: 1, cols: 1, dim: 2, targets: new Int32Array([0]) });
    mbvr.modalityBalance({ visual: one, text: one, fused: one, batch: 1, dim: 2 });
    mbvr.scoreSeparation({ query: one, fused: one, shuffled: one, batch: 1, dim: 2 });
    return fromPackage;
  } catch {
    return fallback; // an addon built before the evaluation functions
  }
}

export const fallbackMetrics = fallback;
