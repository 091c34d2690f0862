// Training and evaluation of one run. Both runs start from the same weights, see the
// same batches in the same order and take the same number of steps; they differ only in
// the loss:
//   baseline: L_qm + L_mq                                   (alpha = beta = gamma = 0)
//   mbvr:     L_qm + L_mq + L_v + L_t + L_ms, with K modality-shuffled negatives per row
//             s_ik = H(t_i, v_pi_k(i)) from modalityShuffle, fused by the model itself, and
//             a dynamic margin delta_i = marginScale * (visual relevance of query i).
// The loss and its gradients come from mbvr/tfjs (the native addon), the rest from tfjs.
//
// Data parallel (a `comm`, e.g. under mpirun): every rank draws the same global batches
// and holds its rows of each; the loss is the global batch's (mbvr/tfjs with the comm),
// each rank backpropagates its rows, and the ranks sum their shares of the model
// gradients (allReduce) before the same Adam step, so every rank trains the same model
// as one process would (test/mpi-demo.test.ts compares the losses per step).
import * as tf from '@tensorflow/tfjs-core';
import type { Communicator } from '../../src/communicator';
import { modalityShuffle } from '../../src/index';
import { mbvrLoss, shuffledPairs } from '../../src/tfjs';
import type { MbvrTerms } from '../../src/types';
import type { Dataset } from './data';
import type { Metrics } from './metrics';
import { bagsOf, createModel, framesOf, type Model, type ModelOptions } from './model';
import { shuffle, stream } from './random';

export type Mode = 'baseline' | 'mbvr';

export interface TrainOptions {
  /** weights and batch order come from it [1] */
  seed: number;
  /** [8] */
  epochs: number;
  /** [256] */
  batch: number;
  /** Adam [0.003] */
  learningRate: number;
  /** tau [0.05] */
  temperature: number;
  /** MS negatives per row (mbvr) [2] */
  k: number;
  /** delta_i = marginScale * visual relevance (mbvr) [0.1] */
  marginScale: number;
  model: Partial<ModelOptions>;
}

export const defaultTrainOptions: TrainOptions = {
  seed: 1,
  epochs: 8,
  batch: 256,
  learningRate: 0.003,
  temperature: 0.05,
  k: 2,
  marginScale: 0.1,
  model: {},
};

export interface Progress {
  step: number;
  steps: number;
  loss: number;
  terms: MbvrTerms;
}

export interface RunResult {
  mode: Mode;
  seconds: number;
  /** loss and terms per step */
  history: { loss: number; terms: MbvrTerms }[];
  model: Model;
}

export function stepsFor(data: Dataset, o: TrainOptions): number {
  return o.epochs * Math.floor(data.train.length / o.batch);
}

/** Rank r's rows [start, end) of a global batch of n rows over `size` ranks. */
export function rankRows(n: number, rank: number, size: number): [number, number] {
  const base = Math.floor(n / size), extra = n % size;
  const start = rank * base + Math.min(rank, extra);
  return [start, start + base + (rank < extra ? 1 : 0)];
}

export function train(
  data: Dataset,
  mode: Mode,
  o: TrainOptions,
  onProgress?: (p: Progress) => void,
  comm?: Communicator,
  maxSteps = Infinity,
): RunResult {
  const start = performance.now();
  const d = data.options;
  const vocabulary = data.words.length;
  const model = createModel(vocabulary, d.frameDim, o.seed, o.model);
  const optimizer = tf.train.adam(o.learningRate);
  const orderRandom = stream(o.seed, 'batch-order');
  const perEpoch = Math.floor(data.train.length / o.batch);
  const steps = Math.min(o.epochs * perEpoch, maxSteps);
  const history: RunResult['history'] = [];
  const order = data.train.map((_, i) => i);
  const [first, end] = comm ? rankRows(o.batch, comm.rank, comm.size) : [0, o.batch];
  let step = 0;
  for (let epoch = 0; epoch < o.epochs && step < steps; epoch++) {
    shuffle(orderRandom, order);
    for (let b = 0; b < perEpoch && step < steps; b++, step++) {
      const batch = order.slice(b * o.batch, (b + 1) * o.batch).map((i) => data.train[i]);
      const pi = modalityShuffle(o.batch, { k: o.k, seed: o.seed * 1_000_003 + step, labels: Int32Array.from(batch, (q) => q.video) });
      // This process's rows (all of them without a comm).
      const rows = batch.slice(first, end);
      const videoIds = rows.map((q) => q.video);
      const labels = Int32Array.from(videoIds);
      const margin = Float32Array.from(rows, (q) => o.marginScale * q.visualRelevance);
      const queryBags = bagsOf(rows.map((q) => q.tokens), vocabulary);
      const titleBags = bagsOf(videoIds.map((v) => data.videos[v].title), vocabulary);
      const frames = framesOf(data.frames, videoIds, d.frames, d.frameDim);
      // With a comm, the visuals an MS negative needs may be another rank's rows: this
      // rank embeds those videos' frames itself (pi over its own rows, then the identity).
      const piRows = comm ? Array.from(pi.subarray(first * o.k, end * o.k), (j) => batch[j].video) : [];
      const piFrames = comm && mode === 'mbvr' ? framesOf(data.frames, piRows, d.frames, d.frameDim) : undefined;
      let terms: MbvrTerms | undefined;
      const lossOf = () => {
        const query = model.encodeQuery(queryBags);
        const text = model.encodeText(titleBags);
        const visual = model.encodeVisual(frames);
        const fused = model.fuse(text, visual);
        const onResult = (r: { terms: MbvrTerms }) => (terms = r.terms);
        if (mode === 'baseline')
          return mbvrLoss({ query, fused }, { temperature: o.temperature, alpha: 0, beta: 0, gamma: 0, labels, onResult, comm });
        // Row i*K + k of the shuffled set fuses text i with the visuals of video pi_k(i).
        const pairs = piFrames
          ? shuffledPairs(text, model.encodeVisual(piFrames), Int32Array.from(piRows, (_, r) => r))
          : shuffledPairs(text, visual, pi);
        const shuffled = model.fuse(pairs.text as tf.Tensor2D, pairs.visual as tf.Tensor2D);
        return mbvrLoss({ query, fused, visual, text, shuffled }, { temperature: o.temperature, margin, labels, onResult, comm });
      };
      let value: number;
      if (!comm) {
        const loss = optimizer.minimize(lossOf, true, model.variables)!;
        value = loss.dataSync()[0];
        loss.dispose();
      } else {
        // The global loss's gradient is the sum over ranks of what each rank's rows give.
        const { value: loss, grads } = tf.variableGrads(lossOf as () => tf.Scalar, model.variables);
        value = loss.dataSync()[0];
        const summed = Object.entries(grads).map(([name, g]) => ({
          name,
          tensor: tf.tensor(comm.sync!.allReduce(g.dataSync() as Float32Array, 'sum'), g.shape, 'float32'),
        }));
        optimizer.applyGradients(summed);
        tf.dispose([loss, ...Object.values(grads), ...summed.map((g) => g.tensor)]);
      }
      tf.dispose([queryBags, titleBags, frames, ...(piFrames ? [piFrames] : [])]);
      history.push({ loss: value, terms: terms! });
      onProgress?.({ step: step + 1, steps, loss: value, terms: terms! });
    }
  }
  optimizer.dispose();
  return { mode, seconds: (performance.now() - start) / 1000, history, model };
}

/** What evaluation computes the metrics on (and what the report reads). */
export interface Embeddings {
  dim: number;
  /** T x D, one row per test query */
  query: Float32Array;
  /** T: the gallery row (video) that answers each test query */
  targets: Int32Array;
  /** N x D, every video: the retrieval gallery */
  gallery: Float32Array;
  /** T x D, the target videos' fused, visual and text embeddings */
  fused: Float32Array;
  visual: Float32Array;
  text: Float32Array;
  /** T x K x D: each target's text fused with the visuals of K other targets */
  shuffled: Float32Array;
}

export interface Evaluation {
  recall: { 1: number; 5: number; 10: number };
  visionRecall: { 1: number; 5: number; 10: number };
  textRecall: { 1: number; 5: number; 10: number };
  /** share of the vision-dependent queries whose target outscores every video with the
   * same title: the part of the ranking that only the visuals can decide */
  siblingWins: number;
  /** over the test queries' target videos */
  rvtMedian: number;
  msAuc: number;
}

/** Rows of a model output computed in chunks, read back as one Float32Array. */
function embed(n: number, dim: number, chunk: number, f: (from: number, to: number) => tf.Tensor2D): Float32Array {
  const out = new Float32Array(n * dim);
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk);
    const rows = tf.tidy(() => f(from, to));
    out.set(rows.dataSync() as Float32Array, from * dim);
    rows.dispose();
  }
  return out;
}

function pickRows(src: Float32Array, index: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(index.length * dim);
  for (let i = 0; i < index.length; i++) out.set(src.subarray(index[i] * dim, (index[i] + 1) * dim), i * dim);
  return out;
}

export function embedAll(data: Dataset, model: Model, seed: number, k = 4): Embeddings {
  const d = data.options;
  const dim = model.options.dim;
  const vocabulary = data.words.length;
  const chunk = 512;
  const ids = data.videos.map((_, i) => i);
  const n = ids.length;
  const text = embed(n, dim, chunk, (a, b) => model.encodeText(bagsOf(ids.slice(a, b).map((v) => data.videos[v].title), vocabulary)));
  const visual = embed(n, dim, chunk, (a, b) => model.encodeVisual(framesOf(data.frames, ids.slice(a, b), d.frames, d.frameDim)));
  const fuseRows = (t: Float32Array, v: Float32Array, rows: number) =>
    embed(rows, dim, chunk, (a, b) => model.fuse(tf.tensor2d(t.subarray(a * dim, b * dim), [b - a, dim]), tf.tensor2d(v.subarray(a * dim, b * dim), [b - a, dim])));
  const gallery = fuseRows(text, visual, n);
  const tests = data.test;
  const query = embed(tests.length, dim, chunk, (a, b) => model.encodeQuery(bagsOf(tests.slice(a, b).map((q) => q.tokens), vocabulary)));
  const targets = Int32Array.from(tests, (q) => q.video);
  // MS negatives: row i*K + k fuses target i's text with target pi_k(i)'s visuals.
  const pi = modalityShuffle(tests.length, { k, seed: seed + 7919, labels: targets });
  const ownText = pickRows(text, Array.from({ length: tests.length * k }, (_, r) => targets[Math.floor(r / k)]), dim);
  const otherVisual = pickRows(visual, Array.from(pi, (p) => targets[p]), dim);
  return {
    dim,
    query,
    targets,
    gallery,
    fused: pickRows(gallery, targets, dim),
    visual: pickRows(visual, targets, dim),
    text: pickRows(text, targets, dim),
    shuffled: fuseRows(ownText, otherVisual, tests.length * k),
  };
}

export function evaluate(data: Dataset, e: Embeddings, metrics: Metrics): Evaluation {
  const { dim, targets } = e;
  const tests = data.test;
  const n = e.gallery.length / dim;
  const recallOn = (keep: (i: number) => boolean) => {
    const rows = tests.map((_, i) => i).filter(keep);
    if (rows.length === 0) return { 1: NaN, 5: NaN, 10: NaN }; // (no such queries: --vision-share 0)
    return metrics.retrieval(pickRows(e.query, rows, dim), e.gallery, rows.length, n, dim, Int32Array.from(rows, (r) => targets[r])).recall;
  };
  const cosine = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < dim; k++) {
      ab += a[i * dim + k] * b[j * dim + k];
      aa += a[i * dim + k] ** 2;
      bb += b[j * dim + k] ** 2;
    }
    return ab / Math.sqrt(aa * bb);
  };
  const siblings = new Map<number, number[]>();
  data.videos.forEach((v, j) => v.series >= 0 && siblings.set(v.series, [...(siblings.get(v.series) ?? []), j]));
  let visionQueries = 0;
  let wins = 0;
  tests.forEach((t, i) => {
    if (!t.needsVision) return;
    visionQueries++;
    const own = cosine(e.query, i, e.gallery, t.video);
    if (siblings.get(data.videos[t.video].series)!.every((j) => j === t.video || cosine(e.query, i, e.gallery, j) < own)) wins++;
  });
  return {
    siblingWins: visionQueries ? wins / visionQueries : NaN,
    recall: recallOn(() => true),
    visionRecall: recallOn((i) => tests[i].needsVision),
    textRecall: recallOn((i) => !tests[i].needsVision),
    rvtMedian: metrics.balance(e.visual, e.text, e.fused, tests.length, dim).median,
    msAuc: metrics.separation(e.query, e.fused, e.shuffled, tests.length, dim).auc,
  };
}
