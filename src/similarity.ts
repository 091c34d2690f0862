// similarity() and shuffledLogits(): the logits of SPEC section 2 on their own.
import { native } from './native';
import { readMatrix } from './tensor';
import type { ShuffledLogitsOptions, SimilarityOptions } from './types';
import { optionalBoolean, optionalNumber, optionalThreads, positiveInteger, requireLength, requireObject } from './validate';

/** rows x cols matrix of c(a_i, b_j) / temperature (cosine when normalize, the default). */
export function similarity(a: unknown, b: unknown, options: SimilarityOptions = {}): Float32Array {
  const opt = requireObject(options, 'options');
  const va = readMatrix(a, 'a');
  const vb = readMatrix(b, 'b');
  const dim = positiveInteger(opt.dim ?? va.shape?.[1] ?? vb.shape?.[1], 'dim');
  const rows = positiveInteger(opt.rows ?? va.shape?.[0], 'rows');
  const cols = positiveInteger(opt.cols ?? vb.shape?.[0], 'cols');
  requireLength(va.data, rows * dim, 'a', 'rows * dim');
  requireLength(vb.data, cols * dim, 'b', 'cols * dim');
  optionalNumber(opt.temperature, 'temperature', 'positive');
  optionalBoolean(opt.normalize, 'normalize');
  optionalThreads(opt.threads);
  return native().similarity(va.data, vb.data, { ...opt, rows, cols, dim });
}

/** B x K matrix of c(q_i, s_ik) / temperature, the modality-shuffled logits. */
export function shuffledLogits(query: unknown, shuffled: unknown, options: ShuffledLogitsOptions = {}): Float32Array {
  const opt = requireObject(options, 'options');
  const q = readMatrix(query, 'query');
  const s = readMatrix(shuffled, 'shuffled');
  const batch = positiveInteger(opt.batch ?? q.shape?.[0], 'batch');
  const dim = positiveInteger(opt.dim ?? q.shape?.[1], 'dim');
  requireLength(q.data, batch * dim, 'query', 'batch * dim');
  if (s.data.length === 0 || s.data.length % (batch * dim) !== 0)
    requireLength(s.data, batch * dim, 'shuffled', 'batch * k * dim, a whole multiple of batch * dim');
  optionalNumber(opt.temperature, 'temperature', 'positive');
  optionalBoolean(opt.normalize, 'normalize');
  optionalThreads(opt.threads);
  return native().shuffledLogits(q.data, s.data, { ...opt, batch, dim });
}
