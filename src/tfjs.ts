// mbvr/tfjs: the MBVR loss as a TensorFlow.js op, and shuffledPairs, the inputs of the
// modality-shuffled negatives (src/tfjs-pairs.ts). The loss's forward pass reads the
// tensors (dataSync) and calls mbvrLossSync; the backward pass hands tfjs the native
// gradients, scaled by the upstream gradient dy. So `optimizer.minimize(() => mbvrLoss(...))`,
// `tf.grads` and `tf.variableGrads` train any tfjs model with the exact MBVR gradients.
//
// Optional peer dependency: @tensorflow/tfjs-core >= 4 (loaded by src/tfjs-load.ts, which
// says what to install when it is missing). `import 'mbvr'` never loads it.
/// <reference lib="dom" />
/// <reference types="long" />
import type * as TF from '@tensorflow/tfjs-core';
import { Described, invalidParameterError } from './errors';
import { mbvrLossSync } from './loss';
import { LOSS_OPTION_KEYS } from './loss-check';
import { tf, warnIfNoGradients } from './tfjs-load';
import type { MbvrGrads, MbvrOptions, MbvrResult } from './types';
import { requireKnownKeys, requireObject } from './validate';

export { shuffledPairs, type ShuffledPairs } from './tfjs-pairs';

export interface TfMbvrInputs {
  /** B x D */
  query: TF.Tensor;
  /** B x D: H(t_i, v_i) */
  fused: TF.Tensor;
  /** B x D, needed when alpha > 0 */
  visual?: TF.Tensor;
  /** B x D, needed when beta > 0 */
  text?: TF.Tensor;
  /** B x K x D, or (B * K) x D (row i * K + k: H(t_i, v_pi_k(i)), see shuffledPairs), needed when gamma > 0 */
  shuffled?: TF.Tensor;
}

/** The bounds of a learned logit scale, OpenCLIP's: tau = exp(-s) stays in [0.01, 1]. */
export const LOGIT_SCALE_MIN = 0;
export const LOGIT_SCALE_MAX = Math.log(100);

export interface TfMbvrOptions extends Omit<MbvrOptions, 'temperature' | 'margin' | 'labels' | 'grads'> {
  /** tau [0.05]; a scalar tensor (a tf.variable) is trained too: it receives dL/dtau.
   * To learn the temperature, prefer `logitScale`: a plain tau can step below zero.
   * With `comm`, every gradient is this rank's share, the temperature's too (1 / size of
   * the global one): sum them all over the ranks, as for the model's variables. */
  temperature?: number | TF.Tensor;
  /**
   * A learned temperature as OpenCLIP learns it: s = ln(1 / tau), a one-element float32
   * tensor (a tf.variable, e.g. initialised to ln(1 / 0.07)). The loss uses
   * tau = exp(-clamp(s, 0, ln 100)), so tau stays in [0.01, 1] whatever the optimizer
   * does, and s receives dL/ds = -tau * dL/dtau inside the bounds; outside them (the
   * clamp active), only a gradient that steps s back inside. Not with `temperature`.
   */
  logitScale?: TF.Tensor;
  /** delta, one number or one per row (a tensor of one value counts as one number; a constant: no gradient flows into it) [0] */
  margin?: number | Float32Array | TF.Tensor;
  /** video ids, length B (an Int32Array or an int32 tensor) */
  labels?: Int32Array | TF.Tensor;
  /** Called with the native result of every forward pass: the terms, for logging. */
  onResult?: (result: MbvrResult) => void;
}

type InputName = 'query' | 'fused' | 'visual' | 'text' | 'shuffled';
const INPUT_NAMES: readonly InputName[] = ['query', 'fused', 'visual', 'text', 'shuffled'];
/** The adapter's options: the loss's, less `grads`, with `logitScale` beside `temperature`, and `onResult`. */
const TF_OPTION_KEYS: readonly string[] = [
  ...LOSS_OPTION_KEYS.flatMap((key) => (key === 'grads' ? [] : key === 'temperature' ? [key, 'logitScale'] : [key])),
  'onResult',
];

function isTensor(value: unknown): value is TF.Tensor {
  return value instanceof tf.Tensor;
}

function requireTensor(value: unknown, name: string, dtype: 'float32' | 'int32'): TF.Tensor {
  if (!isTensor(value)) throw invalidParameterError(name, 'a tf.Tensor (one @tensorflow/tfjs-core in the project)', value);
  if (value.isDisposed) throw invalidParameterError(name, 'a live tf.Tensor', new Described('a disposed tensor'));
  if (value.dtype !== dtype) throw invalidParameterError(name, `a ${dtype} tensor`, new Described(`a ${value.dtype} tensor`));
  return value;
}

function shapeText(shape: readonly number[]): string {
  return `shape [${shape.join(', ')}]`;
}

/** Checks the shapes tfjs users get wrong; lengths are re-checked by mbvrLossSync. */
function checkShapes(tensors: Partial<Record<InputName, TF.Tensor>>): { batch: number; dim: number } {
  const query = tensors.query!;
  if (query.rank !== 2) throw invalidParameterError('query', 'a rank-2 tensor [batch, dim]', new Described(shapeText(query.shape)), RangeError);
  const [batch, dim] = query.shape;
  for (const name of ['fused', 'visual', 'text'] as const) {
    const t = tensors[name];
    if (t && (t.rank !== 2 || t.shape[0] !== batch || t.shape[1] !== dim))
      throw invalidParameterError(name, `shape [${batch}, ${dim}] (batch, dim)`, new Described(shapeText(t.shape)), RangeError);
  }
  const s = tensors.shuffled;
  if (s) {
    const shape = s.shape as number[];
    // (batch 0: a data-parallel rank that holds no rows.)
    const ok =
      (shape.length === 3 && shape[0] === batch && shape[2] === dim && shape[1] >= 1) ||
      (shape.length === 2 && shape[1] === dim && (batch === 0 ? shape[0] === 0 : shape[0] >= batch && shape[0] % batch === 0));
    if (!ok)
      throw invalidParameterError(
        'shuffled',
        `shape [${batch}, k, ${dim}] or [${batch} * k, ${dim}] (batch, k, dim)`,
        new Described(shapeText(s.shape)),
        RangeError,
      );
  }
  return { batch, dim };
}

/**
 * Where tau comes from: a number (or the default), or a tensor input of the op — tau
 * itself (`temperature`) or s = ln(1 / tau) (`logitScale`) — with the map from the
 * tensor's value to tau and the chain rule from dL/dtau back to that value.
 */
interface TemperatureSource {
  /** the tensor the op takes as its last input, when tau is learned */
  tensor?: TF.Tensor;
  /** tau from the tensor's value (or the number, when there is no tensor) */
  tau(value: number): number | undefined;
  /** d(loss * dy)/d(value), from dL/dtau and the upstream dy */
  grad(value: number, dLdtau: number, dy: number): number;
}

function requireScalarTensor(value: unknown, name: string, expected: string): TF.Tensor {
  const t = requireTensor(value, name, 'float32');
  if (t.size !== 1) throw invalidParameterError(name, expected, new Described(shapeText(t.shape)), RangeError);
  return t;
}

function temperatureSource(temperature: unknown, logitScale: unknown): TemperatureSource {
  if (logitScale !== undefined) {
    if (temperature !== undefined) throw invalidParameterError('options', 'temperature or logitScale (not both)', new Described('both'));
    const tensor = requireScalarTensor(logitScale, 'logitScale', 'a one-element tensor');
    const clamp = (s: number) => Math.min(Math.max(s, LOGIT_SCALE_MIN), LOGIT_SCALE_MAX);
    return {
      tensor,
      tau(s) {
        if (!Number.isFinite(s)) throw invalidParameterError('logitScale', 'a finite value', s, RangeError);
        return Math.exp(-clamp(s));
      },
      // tau = exp(-s): dL/ds = -tau dL/dtau while the clamp is inactive. Where it is
      // active, a clamp's own gradient (0) would strand s outside the bounds for good
      // (tau frozen at 0.01 or 1); OpenCLIP avoids that by clamping the parameter after
      // each step. Without touching the variable, the same effect: a gradient that steps
      // s back inside passes, one that pushes it further out is dropped.
      grad(s, dLdtau, dy) {
        const g = -Math.exp(-clamp(s)) * dLdtau * dy; // gradient descent moves s by -lr * g
        if (s > LOGIT_SCALE_MAX) return g > 0 ? g : 0;
        if (s < LOGIT_SCALE_MIN) return g < 0 ? g : 0;
        return g;
      },
    };
  }
  if (temperature === undefined || typeof temperature === 'number')
    return { tau: () => temperature as number | undefined, grad: () => 0 };
  return {
    tensor: requireScalarTensor(temperature, 'temperature', 'a number or a one-element tensor'),
    tau: (value) => value,
    grad: (_, dLdtau, dy) => dLdtau * dy,
  };
}

/**
 * The MBVR loss of docs/math.md §2 as a scalar tensor, differentiable in every input
 * tensor (and in `temperature` or `logitScale` when given as a tensor). Gradients are the
 * native ones, multiplied by the upstream gradient.
 */
export function mbvrLoss(inputs: TfMbvrInputs, options: TfMbvrOptions = {}): TF.Scalar {
  const inp = { ...requireObject(inputs, 'inputs') };
  const opt = { ...requireObject(options, 'options') } as TfMbvrOptions;
  requireKnownKeys(inp, INPUT_NAMES, 'inputs', { keys: TF_OPTION_KEYS, where: 'options, the second argument' });
  if ((opt as { grads?: unknown }).grads !== undefined)
    throw invalidParameterError('options.grads', 'no grads option in mbvr/tfjs (its gradients are computed when tf.grad asks for them)', (opt as { grads?: unknown }).grads);
  requireKnownKeys(opt as Record<string, unknown>, TF_OPTION_KEYS, 'options', { keys: INPUT_NAMES, where: 'inputs, the first argument' });
  const given: Partial<Record<InputName, TF.Tensor>> = {};
  for (const name of INPUT_NAMES) {
    if (inp[name] !== undefined) given[name] = requireTensor(inp[name], name, 'float32');
    else if (name === 'query' || name === 'fused') throw invalidParameterError(name, 'a tf.Tensor', undefined);
  }
  const { batch, dim } = checkShapes(given);
  const names = INPUT_NAMES.filter((n) => given[n] !== undefined);

  const { temperature, logitScale, margin, labels, onResult, ...rest } = opt;
  const source = temperatureSource(temperature, logitScale);
  // Constants are read once, outside the op.
  let marginValue: number | Float32Array | undefined;
  if (margin !== undefined && typeof margin !== 'number' && !(margin instanceof Float32Array)) {
    // One value for every row (a scalar tensor) or one per row.
    const values = requireTensor(margin, 'margin', 'float32').dataSync() as Float32Array;
    marginValue = values.length === 1 && batch !== 1 ? values[0] : values;
  } else marginValue = margin;
  let labelValue: Int32Array | undefined;
  if (labels !== undefined && !(labels instanceof Int32Array))
    labelValue = requireTensor(labels, 'labels', 'int32').dataSync() as Int32Array;
  else labelValue = labels;
  if (onResult !== undefined && typeof onResult !== 'function') throw invalidParameterError('onResult', 'a function', onResult);

  const op = tf.customGrad((...args: Array<TF.Tensor | TF.GradSaveFunc>) => {
    const tensors = args.slice(0, names.length) as TF.Tensor[];
    const data: Partial<Record<InputName, Float32Array>> = {};
    names.forEach((name, i) => (data[name] = tensors[i].dataSync() as Float32Array));
    const value = source.tensor ? (args[names.length] as TF.Tensor).dataSync()[0] : NaN;
    const result = mbvrLossSync(
      { batch, dim, query: data.query!, fused: data.fused!, visual: data.visual, text: data.text, shuffled: data.shuffled },
      { ...rest, temperature: source.tau(value), margin: marginValue, labels: labelValue, grads: true },
    );
    onResult?.(result);
    const grads = result.grads as MbvrGrads;
    // With a comm, dL/dtau is the global batch's on every rank, while the other gradients
    // are this rank's shares of the model's: a trainer sums every variable's gradient over
    // the ranks (allReduce), so the temperature's gets its share too, 1 / size.
    const share = rest.comm ? 1 / rest.comm.size : 1;
    return {
      value: tf.scalar(result.loss),
      // The gradient tensors are made here, from copies: tfjs's cpu backend adopts the
      // array it is given, and `onResult` has shown the native arrays to user code.
      gradFunc: (dy: TF.Tensor) => {
        warnIfNoGradients();
        const out = names.map((name, i) => tf.mul(dy, tf.tensor(grads[name]!.slice(), tensors[i].shape, 'float32')));
        if (source.tensor) out.push(tf.fill(source.tensor.shape, source.grad(value, grads.temperature * share, dy.dataSync()[0]), 'float32'));
        return out;
      },
    };
  });
  const opInputs = names.map((n) => given[n]!);
  if (source.tensor) opInputs.push(source.tensor);
  return op(...opInputs) as TF.Scalar;
}
