// similarity() and shuffledLogits(): the logits of docs/math.md §2 on their own.
import { DEFAULT_TEMPERATURE, MAX_TYPED_LENGTH } from './defaults';
import { Described, invalidParameterError } from './errors';
import { native } from './native';
import { readMatrix } from './tensor';
import type { Matrix, ShuffledLogitsOptions, SimilarityOptions } from './types';
import {
  optionalBoolean,
  optionalNumber,
  optionalThreads,
  positiveInteger,
  requireKnownKeys,
  requireLength,
  requireObject,
} from './validate';
import { inspectFinite, requireRepresentable } from './values';

const SIMILARITY_KEYS = ['rows', 'cols', 'dim', 'temperature', 'normalize', 'threads'] as const;
const SHUFFLED_KEYS = ['batch', 'dim', 'temperature', 'normalize', 'threads'] as const;

/** rows x cols matrix of c(a_i, b_j) / temperature (cosine when normalize, the default). */
export function similarity(a: Matrix, b: Matrix, options: SimilarityOptions = {}): Float32Array {
  const opt = requireObject(options, 'options');
  requireKnownKeys(opt, SIMILARITY_KEYS, 'options');
  const va = readMatrix(a, 'a');
  const vb = readMatrix(b, 'b');
  const dim = positiveInteger(opt.dim ?? va.shape?.[1] ?? vb.shape?.[1], 'dim');
  const rows = positiveInteger(opt.rows ?? va.shape?.[0], 'rows');
  const cols = positiveInteger(opt.cols ?? vb.shape?.[0], 'cols');
  requireLength(va.data, rows * dim, 'a', 'rows * dim');
  requireLength(vb.data, cols * dim, 'b', 'cols * dim');
  if (rows * cols > MAX_TYPED_LENGTH)
    throw invalidParameterError(
      'rows and cols',
      `at most ${MAX_TYPED_LENGTH} entries in all, what one Float32Array holds (for a large gallery, topK and retrievalMetrics stream it; or split the rows)`,
      new Described(`${rows} x ${cols} = ${rows * cols}`),
      RangeError,
    );
  optionalNumber(opt.temperature, 'temperature', 'positive');
  optionalBoolean(opt.normalize, 'normalize');
  optionalThreads(opt.threads);
  const temperature = (opt.temperature as number | undefined) ?? DEFAULT_TEMPERATURE;
  const fa = inspectFinite(va.data, rows, dim, 'a');
  const fb = inspectFinite(vb.data, cols, dim, 'b');
  requireRepresentable({
    normalize: (opt.normalize as boolean | undefined) ?? true,
    temperature,
    queryNorm: fa.maxNorm,
    queryName: 'a',
    documentNorm: fb.maxNorm,
    documentName: 'b',
    margin: 0,
    minNorm: 1, // no gradients here
    weights: {},
    softmax: false,
  });
  return native().similarity(va.data, vb.data, { ...opt, temperature, rows, cols, dim });
}

/** B x K matrix of c(q_i, s_ik) / temperature, the modality-shuffled logits. */
export function shuffledLogits(query: Matrix, shuffled: Matrix, options: ShuffledLogitsOptions = {}): Float32Array {
  const opt = requireObject(options, 'options');
  requireKnownKeys(opt, SHUFFLED_KEYS, 'options');
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
  const temperature = (opt.temperature as number | undefined) ?? DEFAULT_TEMPERATURE;
  const fq = inspectFinite(q.data, batch, dim, 'query');
  const fs = inspectFinite(s.data, s.data.length / dim, dim, 'shuffled');
  requireRepresentable({
    normalize: (opt.normalize as boolean | undefined) ?? true,
    temperature,
    queryNorm: fq.maxNorm,
    documentNorm: fs.maxNorm,
    documentName: 'shuffled',
    margin: 0,
    minNorm: 1,
    weights: {},
    softmax: false,
  });
  return native().shuffledLogits(q.data, s.data, { ...opt, temperature, batch, dim });
}
