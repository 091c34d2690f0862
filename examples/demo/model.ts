// The demo's retriever, in TensorFlow.js: a query encoder, a text encoder and a visual
// encoder that map into one D-dimensional space, and a fusion H(t, v).
//
//   query q  = bag(query words) E Wq + bq                     bag: mean of one-hots, B x V
//   text  t  = bag(title words) E Wt + bt                     E: V x wordDim, shared (*)
//   visual v = mean_f relu(x_f Wv1 + bv1) Wv2 + bv2            x_f: frame features, B x F x Df
//   fused m  = H(t, v) = t + v + relu([t, v] Wh1 + bh1) Wh2 + bh2
//
// (*) Query and title words share one embedding table, as in production two-tower
// models that share a tokenizer and word embeddings: matching a query to a title is
// then nearly free, which is exactly the shortcut that lets a model ignore the visuals.
// H is residual, so t, v and m live in one space and R_vt = cos(v, m) / cos(t, m) says
// how much the fused embedding leans on each. Word bags are dense B x V products (tfjs's
// wasm backend has no gradient kernel for gather); V is ~1.5k, so this is cheap. The MS
// negatives' inputs come from mbvr/tfjs's shuffledPairs (train.ts).
//
// Speed: tfjs-wasm multiplies by a transposed matrix about 10x slower than it transposes
// and multiplies, and tf.matMul's gradient does the former. `matMul` and `constTimes`
// below are the same products with gradients built from explicit transposes (and none
// for a constant left factor): together about 5x faster training steps.
import * as tf from '@tensorflow/tfjs-core';
import { gaussian, type Random, stream } from './random';

export interface ModelOptions {
  /** embedding size D [64] */
  dim: number;
  /** word embedding size [64] */
  wordDim: number;
  /** hidden units of the frame encoder [128] */
  visualHidden: number;
  /** hidden units of the fusion [128] */
  fusionHidden: number;
}

export const defaultModelOptions: ModelOptions = { dim: 64, wordDim: 64, visualHidden: 128, fusionHidden: 128 };

export interface Model {
  options: ModelOptions;
  variables: tf.Variable[];
  encodeQuery(bag: tf.Tensor2D): tf.Tensor2D;
  encodeText(bag: tf.Tensor2D): tf.Tensor2D;
  /** frames: B x F x Df */
  encodeVisual(frames: tf.Tensor3D): tf.Tensor2D;
  fuse(text: tf.Tensor2D, visual: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/** a @ b, differentiable in both. */
const matMul = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.matMul(dy, tf.transpose(saved[1])), tf.matMul(tf.transpose(saved[0]), dy)],
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor2D;

/** c @ b for a constant c (word bags, frame features): differentiable in b. */
function constTimes(c: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    (args[1] as tf.GradSaveFunc)([c]); // kept alive until the backward pass
    return {
      value: tf.matMul(c, args[0] as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.matMul(tf.transpose(saved[0]), dy),
    };
  });
  return op(b) as tf.Tensor2D;
}

function glorot(random: Random, rows: number, cols: number, name: string): tf.Variable {
  const limit = Math.sqrt(6 / (rows + cols));
  const values = Float32Array.from({ length: rows * cols }, () => (2 * random() - 1) * limit);
  return tf.variable(tf.tensor2d(values, [rows, cols]), true, name);
}

function zeros(n: number, name: string): tf.Variable {
  return tf.variable(tf.zeros([n]), true, name);
}

/** A model with weights drawn from `seed`: the same seed, the same starting point. */
export function createModel(vocabulary: number, frameDim: number, seed: number, partial: Partial<ModelOptions> = {}): Model {
  const o: ModelOptions = { ...defaultModelOptions, ...partial };
  const random = stream(seed, 'model-init');
  const E = tf.variable(
    tf.tensor2d(Float32Array.from({ length: vocabulary * o.wordDim }, () => gaussian(random) / Math.sqrt(o.wordDim)), [vocabulary, o.wordDim]),
    true,
    'E',
  );
  const Wq = glorot(random, o.wordDim, o.dim, 'Wq');
  const bq = zeros(o.dim, 'bq');
  const Wt = glorot(random, o.wordDim, o.dim, 'Wt');
  const bt = zeros(o.dim, 'bt');
  const Wv1 = glorot(random, frameDim, o.visualHidden, 'Wv1');
  const bv1 = zeros(o.visualHidden, 'bv1');
  const Wv2 = glorot(random, o.visualHidden, o.dim, 'Wv2');
  const bv2 = zeros(o.dim, 'bv2');
  const Wh1 = glorot(random, 2 * o.dim, o.fusionHidden, 'Wh1');
  const bh1 = zeros(o.fusionHidden, 'bh1');
  const Wh2 = glorot(random, o.fusionHidden, o.dim, 'Wh2');
  const bh2 = zeros(o.dim, 'bh2');
  const variables = [E, Wq, bq, Wt, bt, Wv1, bv1, Wv2, bv2, Wh1, bh1, Wh2, bh2];

  return {
    options: o,
    variables,
    encodeQuery: (bag) => tf.add(matMul(constTimes(bag, E), Wq), bq),
    encodeText: (bag) => tf.add(matMul(constTimes(bag, E), Wt), bt),
    encodeVisual: (frames) => {
      const [b, f, d] = frames.shape;
      const hidden = tf.relu(tf.add(constTimes(tf.reshape(frames, [b * f, d]), Wv1), bv1));
      const pooled = tf.mean(tf.reshape(hidden, [b, f, o.visualHidden]), 1) as tf.Tensor2D;
      return tf.add(matMul(pooled, Wv2), bv2);
    },
    fuse: (t, v) => {
      const mixed = matMul(tf.relu(tf.add(matMul(tf.concat([t, v], 1), Wh1), bh1)), Wh2);
      return tf.add(tf.add(t, v), tf.add(mixed, bh2));
    },
    dispose: () => tf.dispose(variables),
  };
}

/** Word bags: row i holds 1/n for each of query i's n tokens (repeats add up). */
export function bagsOf(tokenLists: readonly (readonly number[])[], vocabulary: number): tf.Tensor2D {
  const out = new Float32Array(tokenLists.length * vocabulary);
  tokenLists.forEach((tokens, i) => {
    for (const w of tokens) out[i * vocabulary + w] += 1 / tokens.length;
  });
  return tf.tensor2d(out, [tokenLists.length, vocabulary]);
}

/** The frames of the given videos, B x F x Df. */
export function framesOf(frames: Float32Array, videos: readonly number[], count: number, frameDim: number): tf.Tensor3D {
  const size = count * frameDim;
  const out = new Float32Array(videos.length * size);
  videos.forEach((v, i) => out.set(frames.subarray(v * size, (v + 1) * size), i * size));
  return tf.tensor3d(out, [videos.length, count, frameDim]);
}
