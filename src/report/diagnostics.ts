// The numbers of a report: the evaluation functions run on one model's embeddings.
import { modalityBalance, retrievalMetrics, scoreSeparation } from '../evaluation';
import type { DistributionSummary } from '../types';
import type { ModelData } from './load';

export interface ModelReport {
  name: string;
  dir: string;
  batch: number;
  dim: number;
  modalityBalance?: { summary: DistributionSummary; meanCosVisual: number; meanCosText: number };
  scoreSeparation?: { k: number; auc: number; positive: DistributionSummary; shuffled: DistributionSummary };
  retrieval: {
    gallery: string;
    cols: number;
    recall: Record<string, number>;
    medianRank: number;
    meanRank: number;
  };
  /** diagnostics left out, with the files they need */
  skipped: string[];
}

/** Per-row values the figures are drawn from. */
export interface ModelValues {
  rvt?: Float32Array;
  positive?: Float32Array;
  shuffled?: Float32Array;
}

/** mean and numpy-style percentiles (as the native summaries), NaN left out. */
export function summarizeValues(values: ArrayLike<number>): DistributionSummary {
  const defined = Array.from(values).filter((v) => !Number.isNaN(v));
  if (defined.length === 0) return { mean: 0, median: 0, p10: 0, p90: 0, count: 0 };
  const mean = defined.reduce((a, b) => a + b, 0) / defined.length;
  defined.sort((a, b) => a - b);
  const at = (q: number) => {
    const h = (defined.length - 1) * q;
    const lo = Math.floor(h);
    return lo + 1 >= defined.length ? defined[lo] : defined[lo] + (h - lo) * (defined[lo + 1] - defined[lo]);
  };
  return { mean, median: at(0.5), p10: at(0.1), p90: at(0.9), count: defined.length };
}

function mean(values: Float32Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

export function computeModel(m: ModelData, ks: number[]): { report: ModelReport; values: ModelValues } {
  const values: ModelValues = {};
  const report: ModelReport = {
    name: m.name,
    dir: m.dir,
    batch: m.batch,
    dim: m.dim,
    modalityBalance: undefined,
    scoreSeparation: undefined,
    retrieval: { gallery: m.gallerySource, cols: m.gallery.shape[0], recall: {}, medianRank: 0, meanRank: 0 },
    skipped: [],
  };

  if (m.visual && m.text) {
    const mb = modalityBalance({ batch: m.batch, dim: m.dim, visual: m.visual.data, text: m.text.data, fused: m.fused.data });
    report.modalityBalance = { summary: mb.summary, meanCosVisual: mean(mb.cosVisual), meanCosText: mean(mb.cosText) };
    values.rvt = mb.rvt;
  } else {
    report.skipped.push('modality balance (needs visual.npy and text.npy)');
  }

  if (m.shuffled && m.k) {
    const ss = scoreSeparation({ batch: m.batch, dim: m.dim, query: m.query.data, fused: m.fused.data, shuffled: m.shuffled.data });
    report.scoreSeparation = { k: m.k, auc: ss.auc, positive: summarizeValues(ss.positive), shuffled: summarizeValues(ss.shuffled) };
    values.positive = ss.positive;
    values.shuffled = ss.shuffled;
  } else {
    report.skipped.push('score separation (needs shuffled.npy)');
  }

  const rm = retrievalMetrics(m.query.data, m.gallery.data, {
    rows: m.batch,
    cols: m.gallery.shape[0],
    dim: m.dim,
    targets: m.targets,
    ks,
  });
  report.retrieval.recall = Object.fromEntries(ks.map((k) => [String(k), rm.recall[k]]));
  report.retrieval.medianRank = rm.medianRank;
  report.retrieval.meanRank = rm.meanRank;
  return { report, values };
}
