// The checks of a loss call: every user-facing check and its wording, in the order a
// user meets them (kinds and sizes, options, values, scales), and the call as the addon
// takes it. Shared by the single-process loss (loss.ts) and each rank's part of the
// data-parallel one (distributed.ts).
import { DEFAULT_TEMPERATURE } from './defaults';
import { Described, invalidParameterError } from './errors';
import type { NativeInputs, NativeOptions } from './native';
import { readMatrix, readShuffled, type MatrixView } from './tensor';
import type { MbvrInputs, MbvrOptions } from './types';
import {
  BACKENDS,
  PRECISIONS,
  optionalBoolean,
  optionalChoice,
  optionalNumber,
  optionalThreads,
  positiveInteger,
  requireKnownKeys,
  requireLength,
  requireObject,
} from './validate';
import { inspectFinite, requireRepresentable, type RowFacts, type Scales } from './values';

/** The loss's option names (mbvr/tfjs derives its own from them). */
export const LOSS_OPTION_KEYS = [
  'temperature', 'alpha', 'beta', 'gamma', 'margin', 'labels', 'normalize', 'grads',
  'backend', 'precision', 'threads', 'logitCacheBytes', 'comm',
] as const;

export const LOSS_INPUT_KEYS = ['batch', 'dim', 'query', 'fused', 'visual', 'text', 'shuffled'] as const;

type InputName = 'query' | 'fused' | 'visual' | 'text' | 'shuffled';

/** A loss call whose arguments passed every check, as the addon takes it. */
export interface CheckedLoss {
  inputs: NativeInputs;
  options: NativeOptions;
  /** K; 0 without shuffled rows */
  k: number;
  /** the value facts of every input given (and of a per-row margin) */
  facts: Partial<Record<InputName | 'margin', RowFacts>>;
}

/** Sizes from the arguments, or from the query tensor's shape. */
function resolveSizes(inputs: Record<string, unknown>, query: MatrixView, allowEmpty: boolean): { batch: number; dim: number } {
  const fromShape = query.shape && query.shape.length === 2 ? query.shape : undefined;
  const batchValue = inputs.batch ?? fromShape?.[0];
  const batch = allowEmpty && batchValue === 0 ? 0 : positiveInteger(batchValue, 'batch');
  const dim = positiveInteger(inputs.dim ?? fromShape?.[1], 'dim');
  if (fromShape && (fromShape[0] !== batch || fromShape[1] !== dim))
    throw invalidParameterError('query', `shape [${batch}, ${dim}] (batch, dim)`, new Described(`shape [${fromShape.join(', ')}]`), RangeError);
  return { batch, dim };
}

function checkRows(view: MatrixView, name: string, rows: number, dim: number): Float32Array {
  requireLength(view.data, rows * dim, name, rows === 1 ? 'dim' : 'batch * dim');
  if (view.shape && view.shape.length >= 2 && view.shape[view.shape.length - 1] !== dim)
    throw invalidParameterError(name, `a last dimension of ${dim} (dim)`, new Described(`shape [${view.shape.join(', ')}]`), RangeError);
  return view.data;
}

/**
 * Every check of a loss call but the scales (requireRepresentable), in the order a user
 * meets them: kinds and sizes, options, then the values. `allowEmpty`: a data-parallel
 * rank may hold no rows (batch 0).
 */
export function checkLoss(inputs: MbvrInputs, options: MbvrOptions = {}, allowEmpty = false): CheckedLoss {
  // Both objects are read once, here (a getter cannot change a value after its check),
  // and their names are checked, so that a typo or a misplaced option cannot train silently.
  const inp = { ...requireObject(inputs, 'inputs') };
  const opt = { ...requireObject(options, 'options') };
  requireKnownKeys(inp, LOSS_INPUT_KEYS, 'inputs', { keys: LOSS_OPTION_KEYS, where: 'options, the second argument' });
  requireKnownKeys(opt, LOSS_OPTION_KEYS, 'options', { keys: LOSS_INPUT_KEYS, where: 'inputs, the first argument' });
  const query = readMatrix(inp.query, 'query');
  const { batch, dim } = resolveSizes(inp, query, allowEmpty);
  const n = batch * dim;
  const out: NativeInputs = {
    batch,
    dim,
    query: checkRows(query, 'query', batch, dim),
    fused: checkRows(readMatrix(inp.fused, 'fused'), 'fused', batch, dim),
  };
  if (inp.visual !== undefined) out.visual = checkRows(readMatrix(inp.visual, 'visual'), 'visual', batch, dim);
  if (inp.text !== undefined) out.text = checkRows(readMatrix(inp.text, 'text'), 'text', batch, dim);
  let k = 0;
  if (inp.shuffled !== undefined) ({ data: out.shuffled, k } = readShuffled(inp.shuffled, batch, dim));

  optionalNumber(opt.temperature, 'temperature', 'positive');
  optionalNumber(opt.alpha, 'alpha', 'nonnegative');
  optionalNumber(opt.beta, 'beta', 'nonnegative');
  optionalNumber(opt.gamma, 'gamma', 'nonnegative');
  if (opt.margin instanceof Float32Array) requireLength(opt.margin, batch, 'margin', 'batch');
  else if (opt.margin !== undefined && typeof opt.margin !== 'number')
    throw invalidParameterError('margin', 'a number or a Float32Array of length batch', opt.margin);
  else optionalNumber(opt.margin, 'margin', 'finite');
  if (opt.labels !== undefined) {
    if (!(opt.labels instanceof Int32Array) || !ArrayBuffer.isView(opt.labels)) throw invalidParameterError('labels', 'an Int32Array', opt.labels);
    requireLength(opt.labels, batch, 'labels', 'batch');
  }
  optionalBoolean(opt.normalize, 'normalize');
  optionalBoolean(opt.grads, 'grads');
  optionalChoice(opt.backend, 'backend', BACKENDS);
  optionalChoice(opt.precision, 'precision', PRECISIONS);
  if (opt.backend === 'cpu' && opt.precision === 'tf32')
    throw invalidParameterError('precision', "'fp32' or 'bf16' with backend 'cpu' (tf32 is CUDA-only)", new Described("'tf32'"), RangeError);
  optionalThreads(opt.threads);
  if (opt.logitCacheBytes !== undefined) {
    optionalNumber(opt.logitCacheBytes, 'logitCacheBytes', 'nonnegative');
    if (!Number.isInteger(opt.logitCacheBytes))
      throw invalidParameterError('logitCacheBytes', 'a whole number of bytes >= 0', opt.logitCacheBytes, RangeError);
  }
  const weight = (v: unknown) => (v === undefined ? 1 : (v as number));
  const need = (name: 'visual' | 'text' | 'shuffled', w: string, term: string) => {
    if (out[name] === undefined)
      throw invalidParameterError(name, `a Float32Array when ${w} > 0 (pass ${w}: 0 to drop ${term})`, undefined);
  };
  if (weight(opt.alpha) > 0) need('visual', 'alpha', 'L_v');
  if (weight(opt.beta) > 0) need('text', 'beta', 'L_t');
  if (weight(opt.gamma) > 0) need('shuffled', 'gamma', 'L_ms');

  // The values: every one finite (one native pass each, which also measures the rows).
  const facts: CheckedLoss['facts'] = {};
  for (const name of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) {
    const data = out[name];
    if (data) facts[name] = inspectFinite(data, name === 'shuffled' ? batch * k : batch, dim, name);
  }
  if (opt.margin instanceof Float32Array) facts.margin = inspectFinite(opt.margin, batch, 1, 'margin');

  const { comm: _comm, ...rest } = opt;
  const nativeOptions = rest as NativeOptions;
  if (nativeOptions.logitCacheBytes !== undefined)
    nativeOptions.logitCacheBytes = Math.min(nativeOptions.logitCacheBytes, Number.MAX_SAFE_INTEGER);
  return { inputs: out, options: nativeOptions, k, facts };
}

/** The scales of a checked call (from its own facts; data parallel merges every rank's). */
export function scalesOf(c: CheckedLoss): Scales {
  const o = c.options;
  const weights: Record<string, number> = {};
  let documentNorm = c.facts.fused?.maxNorm ?? 0;
  let documentName = 'fused';
  let minNorm = Math.min(c.facts.query?.minNorm ?? Infinity, c.facts.fused?.minNorm ?? Infinity);
  for (const [name, weight] of [['visual', 'alpha'], ['text', 'beta'], ['shuffled', 'gamma']] as const) {
    const w = o[weight] ?? 1;
    const f = c.facts[name];
    if (!(w > 0) || !f) continue;
    weights[weight] = w;
    if (f.maxNorm > documentNorm) [documentNorm, documentName] = [f.maxNorm, name];
    minNorm = Math.min(minNorm, f.minNorm);
  }
  const margin = o.margin instanceof Float32Array ? (c.facts.margin?.maxNorm ?? 0) : Math.abs(o.margin ?? 0);
  return {
    normalize: o.normalize ?? true,
    temperature: o.temperature ?? DEFAULT_TEMPERATURE,
    queryNorm: c.facts.query?.maxNorm ?? 0,
    documentNorm,
    documentName,
    margin,
    minNorm: Number.isFinite(minNorm) ? minNorm : 1,
    weights,
    softmax: true,
  };
}

/** Turns user arguments into the binding's, throwing TypeError/RangeError on bad input. */
export function prepareLoss(inputs: MbvrInputs, options?: MbvrOptions): [NativeInputs, NativeOptions] {
  const checked = checkLoss(inputs, options);
  requireRepresentable(scalesOf(checked));
  return [checked.inputs, checked.options];
}
