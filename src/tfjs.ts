// mbvr/tfjs: the MBVR loss as a TensorFlow.js op. The forward pass reads the tensors
// (dataSync) and calls mbvrLossSync; the backward pass hands tfjs the native gradients,
// scaled by the upstream gradient dy. So `optimizer.minimize(() => mbvrLoss(...))`,
// `tf.grads` and `tf.variableGrads` train any tfjs model with the exact MBVR gradients.
//
// Optional peer dependency: @tensorflow/tfjs-core >= 4 (brought by @tensorflow/tfjs,
// @tensorflow/tfjs-node, or a backend package). `import 'mbvr'` never loads it.
// tfjs-core's own typings name DOM and `long` types; these references let this file
// compile under our Node-only tsconfig and are not copied into dist/tfjs.d.ts.
/// <reference lib="dom" />
/// <reference types="long" />
import type * as TF from '@tensorflow/tfjs-core';
import { Described, invalidParameterError } from './errors';
import { mbvrLossSync } from './loss';
import type { MbvrGrads, MbvrOptions, MbvrResult } from './types';
import { requireObject } from './validate';

export interface TfMbvrInputs {
  /** B x D */
  query: TF.Tensor;
  /** B x D: H(t_i, v_i) */
  fused: TF.Tensor;
  /** B x D, needed when alpha > 0 */
  visual?: TF.Tensor;
  /** B x D, needed when beta > 0 */
  text?: TF.Tensor;
  /** B x K x D, or (B * K) x D, needed when gamma > 0 */
  shuffled?: TF.Tensor;
}

export interface TfMbvrOptions extends Omit<MbvrOptions, 'temperature' | 'margin' | 'labels' | 'grads'> {
  /** tau [0.05]; a scalar tensor (a tf.variable) is trained too: it receives dL/dtau. */
  temperature?: number | TF.Tensor;
  /** delta, one number or one per row (a constant: no gradient flows into it) [0] */
  margin?: number | Float32Array | TF.Tensor;
  /** video ids, length B (an Int32Array or an int32 tensor) */
  labels?: Int32Array | TF.Tensor;
  /** Called with the native result of every forward pass: the terms, for logging. */
  onResult?: (result: MbvrResult) => void;
}

/** tfjs-core, or an error that says what to install. */
function loadTfjs(): typeof TF {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@tensorflow/tfjs-core') as typeof TF;
  } catch (cause) {
    throw new Error(
      [
        'mbvr/tfjs: could not load @tensorflow/tfjs-core (TensorFlow.js), an optional peer dependency of mbvr.',
        `Reason: ${(cause as Error).message.split('\n')[0]}`,
        'Possible solutions:',
        '- install TensorFlow.js next to mbvr: npm install @tensorflow/tfjs (or @tensorflow/tfjs-node, or @tensorflow/tfjs-core with a backend)',
        "- or use the core API without tfjs: import { mbvrLossSync } from 'mbvr'",
      ].join('\n'),
      { cause },
    );
  }
}

const tf = loadTfjs();

type InputName = 'query' | 'fused' | 'visual' | 'text' | 'shuffled';
const INPUT_NAMES: readonly InputName[] = ['query', 'fused', 'visual', 'text', 'shuffled'];

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
    const ok =
      (shape.length === 3 && shape[0] === batch && shape[2] === dim && shape[1] >= 1) ||
      (shape.length === 2 && shape[1] === dim && shape[0] >= batch && shape[0] % batch === 0);
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
 * The MBVR loss of docs/math.md §2 as a scalar tensor, differentiable in every input
 * tensor (and in `temperature` when it is a tensor). Gradients are the native ones,
 * multiplied by the upstream gradient.
 */
export function mbvrLoss(inputs: TfMbvrInputs, options: TfMbvrOptions = {}): TF.Scalar {
  const inp = requireObject(inputs, 'inputs');
  const opt = requireObject(options, 'options') as TfMbvrOptions;
  const given: Partial<Record<InputName, TF.Tensor>> = {};
  for (const name of INPUT_NAMES) {
    if (inp[name] !== undefined) given[name] = requireTensor(inp[name], name, 'float32');
    else if (name === 'query' || name === 'fused') throw invalidParameterError(name, 'a tf.Tensor', undefined);
  }
  const { batch, dim } = checkShapes(given);
  const names = INPUT_NAMES.filter((n) => given[n] !== undefined);

  const { temperature, margin, labels, onResult, ...rest } = opt;
  let tauTensor: TF.Tensor | undefined;
  if (temperature !== undefined && typeof temperature !== 'number') {
    tauTensor = requireTensor(temperature, 'temperature', 'float32');
    if (tauTensor.size !== 1)
      throw invalidParameterError('temperature', 'a number or a one-element tensor', new Described(shapeText(tauTensor.shape)), RangeError);
  }
  // Constants are read once, outside the op.
  let marginValue: number | Float32Array | undefined;
  if (margin !== undefined && typeof margin !== 'number' && !(margin instanceof Float32Array))
    marginValue = requireTensor(margin, 'margin', 'float32').dataSync() as Float32Array;
  else marginValue = margin;
  let labelValue: Int32Array | undefined;
  if (labels !== undefined && !(labels instanceof Int32Array))
    labelValue = requireTensor(labels, 'labels', 'int32').dataSync() as Int32Array;
  else labelValue = labels;
  if (onResult !== undefined && typeof onResult !== 'function') throw invalidParameterError('onResult', 'a function', onResult);

  const op = tf.customGrad((...args: Array<TF.Tensor | TF.GradSaveFunc>) => {
    const tensors = args.slice(0, names.length) as TF.Tensor[];
    const data: Partial<Record<InputName, Float32Array>> = {};
    names.forEach((name, i) => (data[name] = tensors[i].dataSync() as Float32Array));
    const tau = tauTensor ? (args[names.length] as TF.Tensor).dataSync()[0] : (temperature as number | undefined);
    const result = mbvrLossSync(
      { batch, dim, query: data.query!, fused: data.fused!, visual: data.visual, text: data.text, shuffled: data.shuffled },
      { ...rest, temperature: tau, margin: marginValue, labels: labelValue, grads: true },
    );
    onResult?.(result);
    const grads = result.grads as MbvrGrads;
    return {
      value: tf.scalar(result.loss),
      // The gradient tensors are made here, from copies: tfjs's cpu backend adopts the
      // array it is given, and `onResult` has shown the native arrays to user code.
      gradFunc: (dy: TF.Tensor) => {
        const out = names.map((name, i) => tf.mul(dy, tf.tensor(grads[name]!.slice(), tensors[i].shape, 'float32')));
        if (tauTensor) out.push(tf.mul(dy, tf.fill(tauTensor.shape, grads.temperature, 'float32')));
        return out;
      },
    };
  });
  const opInputs = names.map((n) => given[n]!);
  if (tauTensor) opInputs.push(tauTensor);
  return op(...opInputs) as TF.Scalar;
}
