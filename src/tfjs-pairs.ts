// shuffledPairs: the inputs of the K modality-shuffled negatives, for the user's fusion H.
// For pi from modalityShuffle (B x K, row-major: pi[i * K + k] = pi_k(i)), row i * K + k of
//   text   is t_i          (each row repeated K times)
//   visual is v_pi_k(i)    (the visuals of another video)
// so H(pairs.text, pairs.visual) is the `shuffled` input of mbvrLoss, [B * K, D], in the
// row order mbvrLoss expects. Both are differentiable in t and v; the gradient of the
// visual rows adds up, into v_j, every row that used video j.
//
// One custom op, `pickRows`, builds both (the text rows pick row floor(r / K)), in one of
// two ways, chosen by where the backend keeps its data (bench/tfjs-shuffle.ts measured
// these against tf.gather with its registered gradient and one-hot matrix products):
//   - cpu, wasm (tensors in main memory): copy the rows in JavaScript, and in the backward
//     add each gradient row into its source row. O(B * K * D) with no tfjs kernel at all:
//     tfjs's cpu backend computes gather's gradient (unsortedSegmentSum) with a pass over
//     the whole batch per video, the wasm backend has no kernel for it, and the one-hot
//     product costs O(B^2 * K * D).
//   - any other backend (webgl, webgpu, tfjs-node): tf.gather forward; backward, gather dy
//     through the inverse of the index and sum. Forward kernels only, on the device, with
//     no read-back to the CPU.
import type * as TF from '@tensorflow/tfjs-core';
import { Described, invalidParameterError } from './errors';
import { tf, warnIfNoGradients } from './tfjs-load';

export interface ShuffledPairs {
  /** [B * K, ...]: row i * K + k is text row i */
  text: TF.Tensor;
  /** [B * K, ...]: row i * K + k is visual row pi[i * K + k] */
  visual: TF.Tensor;
}

function requireRows(value: unknown, name: string): TF.Tensor {
  if (!(value instanceof tf.Tensor)) throw invalidParameterError(name, 'a tf.Tensor (one @tensorflow/tfjs-core in the project)', value);
  if (value.isDisposed) throw invalidParameterError(name, 'a live tf.Tensor', new Described('a disposed tensor'));
  if (value.dtype !== 'float32') throw invalidParameterError(name, 'a float32 tensor', new Described(`a ${value.dtype} tensor`));
  if (value.rank < 1 || value.shape[0] < 1)
    throw invalidParameterError(name, 'a tensor of one row per video [batch, ...]', new Described(`shape [${value.shape.join(', ')}]`), RangeError);
  return value;
}

/** The index checks: K = pi.length / B a whole number >= 1, every entry a row of the batch. */
/** K, from pi's B * K entries, each a row of the `visuals` visual rows. */
function requireIndex(pi: unknown, batch: number, visuals: number): number {
  if (!(pi instanceof Int32Array)) throw invalidParameterError('pi', 'an Int32Array (from modalityShuffle)', pi);
  if (pi.length === 0 || pi.length % batch !== 0)
    throw invalidParameterError('pi', `a length that is a positive multiple of ${batch} (batch x k)`, new Described(`length ${pi.length}`), RangeError);
  for (let r = 0; r < pi.length; r++)
    if (pi[r] < 0 || pi[r] >= visuals)
      throw invalidParameterError(`pi[${r}]`, `a row of visual, 0 to ${visuals - 1}`, pi[r], RangeError);
  return pi.length / batch;
}

/** How pickRows builds its rows: see the header. */
export type PickStrategy = 'copy' | 'gather';

export function strategyFor(backend: string): PickStrategy {
  return backend === 'cpu' || backend === 'wasm' ? 'copy' : 'gather';
}

/**
 * The inverse of `index` (a map from output rows to rows of x): for each row j of x, the
 * output rows that read it, padded to the same count with `index.length` (a zero row the
 * backward appends to dy; not needed when every row is read equally often, as with
 * modalityShuffle, whose every column is a permutation).
 */
function inverseOf(index: Int32Array, rows: number): { inverse: Int32Array; per: number; padded: boolean } {
  const count = new Int32Array(rows);
  for (let r = 0; r < index.length; r++) count[index[r]]++;
  let per = 1;
  for (let j = 0; j < rows; j++) per = Math.max(per, count[j]);
  const padded = count.some((c) => c !== per);
  const inverse = new Int32Array(rows * per).fill(index.length);
  count.fill(0);
  for (let r = 0; r < index.length; r++) inverse[index[r] * per + count[index[r]]++] = r;
  return { inverse, per, padded };
}

/** out[r] = x[index[r]] for rows of `width` floats. */
function copyRows(x: Float32Array, index: Int32Array, width: number): Float32Array {
  const out = new Float32Array(index.length * width);
  for (let r = 0; r < index.length; r++) out.set(x.subarray(index[r] * width, (index[r] + 1) * width), r * width);
  return out;
}

/** dx[index[r]] += dy[r]: the backward of copyRows. */
function addRows(dy: Float32Array, index: Int32Array, rows: number, width: number): Float32Array {
  const dx = new Float32Array(rows * width);
  for (let r = 0; r < index.length; r++) {
    const to = index[r] * width;
    const from = r * width;
    for (let c = 0; c < width; c++) dx[to + c] += dy[from + c];
  }
  return dx;
}

/**
 * Rows of x ([rows, ...]) picked by index: [index.length, ...]; differentiable in x, whose
 * gradient adds up every row picked from it. `index` is trusted (in range) and must not
 * change before the backward pass.
 */
export function pickRows(x: TF.Tensor, index: Int32Array, strategy: PickStrategy = strategyFor(tf.getBackend())): TF.Tensor {
  const rows = x.shape[0];
  const width = x.size / rows;
  const outShape = [index.length, ...x.shape.slice(1)];
  const op = tf.customGrad((...args: Array<TF.Tensor | TF.GradSaveFunc>) => {
    const input = args[0] as TF.Tensor;
    if (strategy === 'copy')
      return {
        value: tf.tensor(copyRows(input.dataSync() as Float32Array, index, width), outShape, 'float32'),
        gradFunc: (dy: TF.Tensor) => {
          warnIfNoGradients();
          return tf.tensor(addRows(dy.dataSync() as Float32Array, index, rows, width), x.shape, 'float32');
        },
      };
    return {
      value: tf.gather(input, index),
      // dx_j = sum over the rows r with index[r] == j of dy_r
      gradFunc: (dy: TF.Tensor) => {
        warnIfNoGradients();
        const { inverse, per, padded } = inverseOf(index, rows);
        const flat = tf.reshape(dy, [index.length, width]);
        const source = padded ? tf.concat([flat, tf.zeros([1, width])]) : flat;
        return tf.reshape(tf.sum(tf.reshape(tf.gather(source, inverse), [rows, per, width]), 1), x.shape);
      },
    };
  });
  return op(x);
}

/**
 * The K modality-shuffled input pairs: `{ text, visual }`, each with B * K rows, row
 * i * K + k holding text row i and visual row pi[i * K + k]. Feed them to your fusion,
 * `H(pairs.text, pairs.visual)`, and pass the result to mbvrLoss as `shuffled`.
 *
 * @param text   the videos' text embeddings (or any per-video text input of H), [B, ...]
 * @param visual the videos' visual embeddings, [B, ...] (its width may differ from text's);
 *               or any N rows that pi indexes (a data-parallel rank: the visuals of the
 *               videos its rows' negatives use, which other ranks may hold)
 * @param pi     B x K indices into visual's rows, from modalityShuffle(B, { k, labels, seed })
 */
export function shuffledPairs(text: TF.Tensor, visual: TF.Tensor, pi: Int32Array): ShuffledPairs {
  const t = requireRows(text, 'text');
  const v = requireRows(visual, 'visual');
  const batch = t.shape[0];
  const k = requireIndex(pi, batch, v.shape[0]);
  const own = Int32Array.from({ length: batch * k }, (_, r) => Math.floor(r / k));
  const index = pi.slice(); // a snapshot: the backward runs later, after the caller may reuse pi
  const strategy = strategyFor(tf.getBackend());
  return { text: pickRows(t, own, strategy), visual: pickRows(v, index, strategy) };
}
