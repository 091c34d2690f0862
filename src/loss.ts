// mbvrLoss / mbvrLossSync: validate, resolve tensor-likes, call the addon.
import { Described, invalidParameterError } from './errors';
import { native, type NativeInputs, type NativeOptions } from './native';
import { readMatrix, type MatrixView } from './tensor';
import type { MbvrInputs, MbvrOptions, MbvrResult } from './types';
import {
  BACKENDS,
  PRECISIONS,
  optionalBoolean,
  optionalChoice,
  optionalNumber,
  optionalThreads,
  positiveInteger,
  requireLength,
  requireObject,
} from './validate';

/** Sizes from the arguments, or from the query tensor's shape. */
function resolveSizes(inputs: Record<string, unknown>, query: MatrixView): { batch: number; dim: number } {
  const fromShape = query.shape && query.shape.length === 2 ? query.shape : undefined;
  const batch = positiveInteger(inputs.batch ?? fromShape?.[0], 'batch');
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

/** Turns user arguments into the binding's, throwing TypeError/RangeError on bad input. */
export function prepareLoss(inputs: MbvrInputs, options: MbvrOptions = {}): [NativeInputs, NativeOptions] {
  const inp = requireObject(inputs, 'inputs');
  const opt = requireObject(options, 'options');
  const query = readMatrix(inp.query, 'query');
  const { batch, dim } = resolveSizes(inp, query);
  const n = batch * dim;
  const out: NativeInputs = {
    batch,
    dim,
    query: checkRows(query, 'query', batch, dim),
    fused: checkRows(readMatrix(inp.fused, 'fused'), 'fused', batch, dim),
  };
  if (inp.visual !== undefined) out.visual = checkRows(readMatrix(inp.visual, 'visual'), 'visual', batch, dim);
  if (inp.text !== undefined) out.text = checkRows(readMatrix(inp.text, 'text'), 'text', batch, dim);
  if (inp.shuffled !== undefined) {
    const s = readMatrix(inp.shuffled, 'shuffled').data;
    if (s.length === 0 || s.length % n !== 0)
      throw invalidParameterError(
        'shuffled',
        `a length that is a whole multiple of ${n} (batch * k * dim)`,
        new Described(`length ${s.length}`),
        RangeError,
      );
    out.shuffled = s;
  }

  optionalNumber(opt.temperature, 'temperature', 'positive');
  optionalNumber(opt.alpha, 'alpha', 'nonnegative');
  optionalNumber(opt.beta, 'beta', 'nonnegative');
  optionalNumber(opt.gamma, 'gamma', 'nonnegative');
  if (opt.margin instanceof Float32Array) requireLength(opt.margin, batch, 'margin', 'batch');
  else if (opt.margin !== undefined && typeof opt.margin !== 'number')
    throw invalidParameterError('margin', 'a number or a Float32Array of length batch', opt.margin);
  else optionalNumber(opt.margin, 'margin', 'finite');
  if (opt.labels !== undefined) {
    if (!(opt.labels instanceof Int32Array)) throw invalidParameterError('labels', 'an Int32Array', opt.labels);
    requireLength(opt.labels, batch, 'labels', 'batch');
  }
  optionalBoolean(opt.normalize, 'normalize');
  optionalBoolean(opt.grads, 'grads');
  optionalChoice(opt.backend, 'backend', BACKENDS);
  optionalChoice(opt.precision, 'precision', PRECISIONS);
  optionalThreads(opt.threads);
  if (opt.logitCacheBytes !== undefined) {
    optionalNumber(opt.logitCacheBytes, 'logitCacheBytes', 'nonnegative');
    if (!Number.isSafeInteger(opt.logitCacheBytes))
      throw invalidParameterError('logitCacheBytes', 'a whole number >= 0', opt.logitCacheBytes, RangeError);
  }

  const weight = (v: unknown) => (v === undefined ? 1 : (v as number));
  const need = (name: 'visual' | 'text' | 'shuffled', w: string, term: string) => {
    if (out[name] === undefined)
      throw invalidParameterError(name, `a Float32Array when ${w} > 0 (pass ${w}: 0 to drop ${term})`, undefined);
  };
  if (weight(opt.alpha) > 0) need('visual', 'alpha', 'L_v');
  if (weight(opt.beta) > 0) need('text', 'beta', 'L_t');
  if (weight(opt.gamma) > 0) need('shuffled', 'gamma', 'L_ms');
  return [out, opt as NativeOptions];
}

/** The MBVR loss and its gradients, computed off the event loop. */
export function mbvrLoss(inputs: MbvrInputs, options?: MbvrOptions): Promise<MbvrResult> {
  let args: [NativeInputs, NativeOptions];
  try {
    args = prepareLoss(inputs, options);
  } catch (error) {
    return Promise.reject(error);
  }
  // Errors raised on the worker thread get the caller's stack rather than none.
  const caller = new Error();
  return native()
    .loss(...args)
    .catch((error: unknown) => {
      if (error instanceof Error && caller.stack)
        error.stack = `${error.name}: ${error.message}\n${caller.stack.split('\n').slice(1).join('\n')}`;
      throw error;
    });
}

/** The MBVR loss and its gradients, on the calling thread. */
export function mbvrLossSync(inputs: MbvrInputs, options?: MbvrOptions): MbvrResult {
  return native().lossSync(...prepareLoss(inputs, options));
}
