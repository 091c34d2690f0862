// The device-resident CUDA path, for training loops where host <-> device copies would
// otherwise dominate: upload embeddings once as CudaTensors, compute the loss on them
// with a CudaSession, keep the gradients on the GPU and download them when wanted.
//
//   const session = new CudaSession();                     // throws the reason without a GPU
//   const q = CudaTensor.from(query, { rows: B, dim: D });  // page-locked staging copies
//   const out = await session.loss({ query: q, fused: m, visual: v, text: t, shuffled: s }, { temperature: 0.05 });
//   const dq = out.grads!.query.download();                 // Float32Array, when needed
//   q.upload(nextQuery);                                    // reuse the device memory
//   session.dispose(); q.dispose();                         // or leave it to the GC
import { DEFAULT_TEMPERATURE } from './defaults';
import { invalidParameterError } from './errors';
import { native, type NativeCudaTensor, type RawLossResult } from './native';
import { readMatrix } from './tensor';
import type { MbvrOptions, MbvrTerms, Matrix, Precision } from './types';
import { Described } from './errors';
import { PRECISIONS, optionalBoolean, optionalChoice, optionalNumber, positiveInteger, requireKnownKeys, requireLength, requireObject } from './validate';
import { inspectFinite, requireRepresentable } from './values';

/** rows x dim floats in GPU memory. */
export class CudaTensor {
  /** @internal */
  readonly handle: NativeCudaTensor;

  /** @internal */
  constructor(handle: NativeCudaTensor) {
    this.handle = handle;
  }

  /** A zero-filled tensor on the GPU. */
  static zeros(rows: number, dim: number): CudaTensor {
    positiveInteger(rows, 'rows');
    positiveInteger(dim, 'dim');
    return new CudaTensor(new (native().CudaTensor)(rows, dim));
  }

  /** Uploads a Float32Array (or a tensor-like; sizes from its shape) to the GPU. */
  static from(data: Matrix, sizes: { rows?: number; dim?: number } = {}): CudaTensor {
    const view = readMatrix(data, 'data');
    const rows = positiveInteger(sizes.rows ?? view.shape?.[0], 'rows');
    const dim = positiveInteger(sizes.dim ?? view.shape?.[view.shape.length - 1], 'dim');
    return new CudaTensor(new (native().CudaTensor)(rows, dim, view.data));
  }

  get rows(): number {
    return this.handle.rows;
  }
  get dim(): number {
    return this.handle.dim;
  }
  get disposed(): boolean {
    return this.handle.disposed;
  }

  /** Replaces the contents (rows * dim floats) without reallocating. */
  upload(data: Matrix): this {
    this.handle.upload(readMatrix(data, 'data').data);
    return this;
  }

  /** A new Float32Array with the contents. */
  download(): Float32Array {
    return this.handle.download();
  }

  /** Frees the GPU memory now (once no pending call uses it). */
  dispose(): void {
    this.handle.dispose();
  }
}

export interface CudaLossInputs {
  query: CudaTensor;
  fused: CudaTensor;
  visual?: CudaTensor;
  text?: CudaTensor;
  /** (B * K) x D rows: the K shuffled negatives of each row, row after row */
  shuffled?: CudaTensor;
}

export type CudaLossOptions = Omit<MbvrOptions, 'backend' | 'threads' | 'logitCacheBytes' | 'comm'>;

export interface CudaLossResult {
  loss: number;
  terms: MbvrTerms;
  grads?: {
    query: CudaTensor;
    fused: CudaTensor;
    visual?: CudaTensor;
    text?: CudaTensor;
    shuffled?: CudaTensor;
    temperature: number;
  };
  backend: 'cuda';
  /** The precision the products ran at (bf16 may fall back to tf32: see the README). */
  precision: Precision;
}

const INPUTS = ['query', 'fused', 'visual', 'text', 'shuffled'] as const;

const OPTION_KEYS = ['temperature', 'alpha', 'beta', 'gamma', 'margin', 'labels', 'normalize', 'grads', 'precision'] as const;

function prepare(inputs: CudaLossInputs, options: CudaLossOptions): [Record<string, unknown>, CudaLossOptions] {
  const inp = requireObject(inputs, 'inputs');
  const opt = requireObject(options, 'options') as CudaLossOptions;
  requireKnownKeys(opt as Record<string, unknown>, OPTION_KEYS, 'options');
  const handles: Record<string, unknown> = {};
  for (const name of INPUTS) {
    const t = inp[name];
    if (t === undefined) continue;
    if (!(t instanceof CudaTensor)) throw invalidParameterError(name, 'a CudaTensor', t);
    if (t.disposed) throw invalidParameterError(name, 'a live CudaTensor', new Described('a disposed one'));
    handles[name] = t.handle;
  }
  for (const name of ['query', 'fused'] as const) if (!handles[name]) throw invalidParameterError(name, 'a CudaTensor', undefined);
  const batch = (inp.query as CudaTensor).rows;
  optionalNumber(opt.temperature, 'temperature', 'positive');
  optionalNumber(opt.alpha, 'alpha', 'nonnegative');
  optionalNumber(opt.beta, 'beta', 'nonnegative');
  optionalNumber(opt.gamma, 'gamma', 'nonnegative');
  if (opt.margin instanceof Float32Array) requireLength(opt.margin, batch, 'margin', 'batch');
  else optionalNumber(opt.margin, 'margin', 'finite');
  if (opt.labels !== undefined) {
    if (!(opt.labels instanceof Int32Array)) throw invalidParameterError('labels', 'an Int32Array', opt.labels);
    requireLength(opt.labels, batch, 'labels', 'batch');
  }
  optionalBoolean(opt.normalize, 'normalize');
  optionalBoolean(opt.grads, 'grads');
  optionalChoice(opt.precision, 'precision', PRECISIONS);
  // The logit limit, where it is known without reading the device's rows: normalised
  // logits are bounded by (1 + |margin|) / tau. (With normalize: false the bound needs the
  // row norms, which the device holds: not checked here.)
  if (opt.normalize !== false) {
    const margin = opt.margin instanceof Float32Array ? inspectFinite(opt.margin, batch, 1, 'margin').maxNorm : Math.abs(opt.margin ?? 0);
    requireRepresentable({
      normalize: true, temperature: opt.temperature ?? DEFAULT_TEMPERATURE, queryNorm: 1, documentNorm: 1,
      documentName: 'fused', margin, minNorm: 1, weights: {}, softmax: true,
    });
  }
  return [handles, opt];
}

function wrapResult(raw: RawLossResult): CudaLossResult {
  const result: CudaLossResult = { loss: raw.loss, terms: raw.terms, backend: 'cuda', precision: raw.precision };
  if (raw.grads) {
    const g: Record<string, unknown> = { temperature: raw.grads.temperature };
    for (const name of INPUTS) if (raw.grads[name]) g[name] = new CudaTensor(raw.grads[name] as NativeCudaTensor);
    result.grads = g as CudaLossResult['grads'];
  }
  return result;
}

/** Repeated MBVR losses on CudaTensors; keeps a stream and its scratch memory. */
export class CudaSession {
  readonly #handle: ReturnType<typeof newSession>;

  /** Throws an Error with the reason (as backends().cuda.reason) where CUDA is unusable. */
  constructor() {
    this.#handle = newSession();
  }

  /** The loss and device-resident gradients, computed off the event loop. */
  async loss(inputs: CudaLossInputs, options: CudaLossOptions = {}): Promise<CudaLossResult> {
    return wrapResult(await this.#handle.loss(...prepare(inputs, options)));
  }

  lossSync(inputs: CudaLossInputs, options: CudaLossOptions = {}): CudaLossResult {
    return wrapResult(this.#handle.lossSync(...prepare(inputs, options)));
  }

  /** Bytes of GPU scratch memory kept between calls. */
  get workspaceBytes(): number {
    return this.#handle.workspaceBytes;
  }

  dispose(): void {
    this.#handle.dispose();
  }
}

function newSession() {
  return new (native().CudaSession)();
}
