// Evaluation and diagnostics (README "Evaluation and mbvr report"; docs/evaluation.md): modalityBalance, scoreSeparation, topK,
// retrievalMetrics. Validate, resolve tensor-likes, call the addon (cpp/evaluation.h).
import { Described, invalidParameterError } from './errors';
import { native } from './native';
import { readMatrix, readShuffled, type MatrixView } from './tensor';
import type {
  Matrix,
  ModalityBalanceInputs,
  ModalityBalanceResult,
  RetrievalMetricsOptions,
  RetrievalMetricsResult,
  ScoreSeparationInputs,
  ScoreSeparationResult,
  TopKOptions,
  TopKResult,
} from './types';
import { optionalBoolean, optionalThreads, positiveInteger, requireKnownKeys, requireLength, requireObject } from './validate';
import { inspectFinite, requireRepresentable } from './values';
import { LOSS_INPUT_KEYS } from './loss-check';

/** The addon's evaluation functions, as the binding takes them (checked arguments). */
interface NativeEvaluation {
  modalityBalance(inputs: {
    batch: number;
    dim: number;
    visual: Float32Array;
    text: Float32Array;
    fused: Float32Array;
  }): ModalityBalanceResult;
  scoreSeparation(inputs: {
    batch: number;
    dim: number;
    query: Float32Array;
    fused: Float32Array;
    shuffled: Float32Array;
  }): ScoreSeparationResult;
  topK(
    queries: Float32Array,
    gallery: Float32Array,
    options: { rows: number; cols: number; dim: number; k: number; normalize?: boolean; threads?: number },
  ): TopKResult;
  retrievalMetrics(
    queries: Float32Array,
    gallery: Float32Array,
    options: {
      rows: number;
      cols: number;
      dim: number;
      targets: Int32Array;
      ks: number[];
      normalize?: boolean;
      threads?: number;
    },
  ): RetrievalMetricsResult;
}

const addon = (): NativeEvaluation => native() as unknown as NativeEvaluation;

/** batch and dim from the arguments, or from a reference tensor's [B, D] shape. */
function batchAndDim(inputs: Record<string, unknown>, ref: MatrixView, refName: string): { batch: number; dim: number } {
  const shape = ref.shape && ref.shape.length === 2 ? ref.shape : undefined;
  const batch = positiveInteger(inputs.batch ?? shape?.[0], 'batch');
  const dim = positiveInteger(inputs.dim ?? shape?.[1], 'dim');
  if (shape && (shape[0] !== batch || shape[1] !== dim))
    throw invalidParameterError(refName, `shape [${batch}, ${dim}] (batch, dim)`, new Described(`shape [${shape.join(', ')}]`), RangeError);
  return { batch, dim };
}

function rowsOf(inputs: Record<string, unknown>, name: string, batch: number, dim: number): Float32Array {
  const view = readMatrix(inputs[name], name);
  requireLength(view.data, batch * dim, name, 'batch * dim');
  inspectFinite(view.data, batch, dim, name);
  return view.data;
}

/**
 * Per row, how much the fused embedding leans on vision relative to text:
 * rvt_i = cos(v_i, m_i) / cos(t_i, m_i) (eq. 1-3 of the MBVR paper), with a summary.
 */
export function modalityBalance(inputs: ModalityBalanceInputs): ModalityBalanceResult {
  const inp = { ...requireObject(inputs, 'inputs') };
  requireKnownKeys(inp, LOSS_INPUT_KEYS, 'inputs'); // (a loss call's inputs object may be passed as it is)
  const fused = readMatrix(inp.fused, 'fused');
  const { batch, dim } = batchAndDim(inp, fused, 'fused');
  requireLength(fused.data, batch * dim, 'fused', 'batch * dim');
  inspectFinite(fused.data, batch, dim, 'fused');
  const visual = rowsOf(inp, 'visual', batch, dim);
  const text = rowsOf(inp, 'text', batch, dim);
  return addon().modalityBalance({ batch, dim, visual, text, fused: fused.data });
}

/**
 * Cosine scores of the positives cos(q_i, m_i) and of the modality-shuffled negatives
 * cos(q_i, s_ik), and the probability that a positive outscores an MS negative of its
 * own row (ties count 1/2).
 */
export function scoreSeparation(inputs: ScoreSeparationInputs): ScoreSeparationResult {
  const inp = { ...requireObject(inputs, 'inputs') };
  requireKnownKeys(inp, LOSS_INPUT_KEYS, 'inputs');
  const query = readMatrix(inp.query, 'query');
  const { batch, dim } = batchAndDim(inp, query, 'query');
  requireLength(query.data, batch * dim, 'query', 'batch * dim');
  inspectFinite(query.data, batch, dim, 'query');
  const fused = rowsOf(inp, 'fused', batch, dim);
  const shuffled = readShuffled(inp.shuffled, batch, dim).data;
  inspectFinite(shuffled, shuffled.length / dim, dim, 'shuffled');
  return addon().scoreSeparation({ batch, dim, query: query.data, fused, shuffled });
}

interface RetrievalArgs {
  q: Float32Array;
  g: Float32Array;
  rows: number;
  cols: number;
  dim: number;
}

function retrievalArgs(queries: Matrix, gallery: Matrix, opt: Record<string, unknown>): RetrievalArgs {
  const q = readMatrix(queries, 'queries');
  const g = readMatrix(gallery, 'gallery');
  const dim = positiveInteger(opt.dim ?? q.shape?.[1] ?? g.shape?.[1], 'dim');
  const rows = positiveInteger(opt.rows ?? q.shape?.[0], 'rows');
  const cols = positiveInteger(opt.cols ?? g.shape?.[0], 'cols');
  if (cols > 2147483647)
    throw invalidParameterError('cols', 'at most 2147483647 gallery rows (Int32Array indices)', cols, RangeError);
  requireLength(q.data, rows * dim, 'queries', 'rows * dim');
  requireLength(g.data, cols * dim, 'gallery', 'cols * dim');
  optionalBoolean(opt.normalize, 'normalize');
  optionalThreads(opt.threads);
  const fq = inspectFinite(q.data, rows, dim, 'queries');
  const fg = inspectFinite(g.data, cols, dim, 'gallery');
  // Scores are cosines, or dot products with normalize: false (temperature 1).
  requireRepresentable({
    normalize: (opt.normalize as boolean | undefined) ?? true,
    temperature: 1,
    queryNorm: fq.maxNorm,
    queryName: 'queries',
    documentNorm: fg.maxNorm,
    documentName: 'gallery',
    margin: 0,
    minNorm: 1,
    weights: {},
    softmax: false,
  });
  return { q: q.data, g: g.data, rows, cols, dim };
}

/**
 * Each query's k best gallery rows by cosine (dot product with normalize: false), best
 * first, ties to the lower index. Streams the gallery in tiles: memory is O(rows * k),
 * never rows x cols. The result does not depend on the thread count.
 */
export function topK(queries: Matrix, gallery: Matrix, options: TopKOptions): TopKResult {
  const opt = requireObject(options, 'options');
  requireKnownKeys(opt, ['rows', 'cols', 'dim', 'k', 'normalize', 'threads'], 'options');
  const { q, g, rows, cols, dim } = retrievalArgs(queries, gallery, opt);
  const k = positiveInteger(opt.k, 'k');
  if (k > cols) throw invalidParameterError('k', `an integer between 1 and cols (${cols})`, k, RangeError);
  if (rows * k > 4294967295)
    throw invalidParameterError('rows * k', 'at most 2^32 - 1 outputs (one typed array)', new Described(`${rows} * ${k}`), RangeError);
  return addon().topK(q, g, { ...opt, rows, cols, dim, k });
}

/**
 * Rank of each query's target, rank_i = 1 + #{ j != t : s_ij > s_it or (s_ij == s_it and j < t) },
 * and recall@k (share of queries with rank <= k, ks default [1, 5, 10]), median and mean
 * rank. Streams the gallery like topK.
 */
export function retrievalMetrics(queries: Matrix, gallery: Matrix, options: RetrievalMetricsOptions): RetrievalMetricsResult {
  const opt = requireObject(options, 'options');
  requireKnownKeys(opt, ['rows', 'cols', 'dim', 'targets', 'ks', 'normalize', 'threads'], 'options');
  const { q, g, rows, cols, dim } = retrievalArgs(queries, gallery, opt);
  const targets = opt.targets;
  if (!(targets instanceof Int32Array)) throw invalidParameterError('targets', 'an Int32Array', targets);
  requireLength(targets, rows, 'targets', 'rows');
  for (let i = 0; i < rows; i++)
    if (targets[i] < 0 || targets[i] >= cols)
      throw invalidParameterError('targets', `gallery rows in [0, ${cols}) (cols)`, new Described(`${targets[i]} at index ${i}`), RangeError);
  let ks = [1, 5, 10];
  if (opt.ks !== undefined) {
    if (!Array.isArray(opt.ks)) throw invalidParameterError('ks', 'an Array of positive integers', opt.ks);
    ks = opt.ks.map((k: unknown, n: number) => positiveInteger(k, `ks[${n}]`));
  }
  return addon().retrievalMetrics(q, g, { ...opt, rows, cols, dim, targets, ks });
}
