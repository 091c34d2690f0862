// Float32Array-or-tensor-like arguments: reads the data and the sizes a tensor carries.
import { Described, describe, invalidParameterError } from './errors';
import type { Matrix, TensorLike } from './types';

export interface MatrixView {
  data: Float32Array;
  /** the tensor's shape, when it had one */
  shape?: readonly number[];
}

function isTensorLike(value: unknown): value is TensorLike {
  return typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && 'data' in value;
}

function checkShape(shape: unknown, name: string): readonly number[] {
  if (!Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n >= 0))
    throw invalidParameterError(`${name}.shape`, 'an array of whole numbers', shape);
  return shape as number[];
}

function isContiguous(shape: readonly number[], stride: readonly number[] | undefined): boolean {
  if (!stride) return true;
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** Reads a Float32Array, or the data and shape of a tensor-like; never copies. */
export function readMatrix(value: unknown, name: string): MatrixView {
  // (isView: a Proxy of a Float32Array passes instanceof but cannot be read as one.)
  if (value instanceof Float32Array && ArrayBuffer.isView(value)) return { data: value };
  if (!isTensorLike(value)) throw invalidParameterError(name, 'a Float32Array or a tensor { data, shape }', value);
  let data: unknown = value.data;
  if (typeof data === 'function') {
    // A tfjs Tensor: data() is async, dataSync() is the synchronous read.
    const { dataSync } = value as { dataSync?: unknown };
    if (typeof dataSync !== 'function')
      throw invalidParameterError(`${name}.data`, 'a Float32Array, or a function beside a dataSync() (a tf.Tensor)', new Described('a function'));
    data = dataSync.call(value);
  }
  if (!(data instanceof Float32Array) || !ArrayBuffer.isView(data))
    throw invalidParameterError(`${name}.data`, 'a Float32Array (float32 tensor)', data);
  const shapeValue = value.shape ?? value.dims;
  if (shapeValue === undefined) return { data };
  const shape = checkShape(Array.from(shapeValue), name);
  if ((value.offset !== undefined && value.offset !== 0) || !isContiguous(shape, value.stride))
    throw invalidParameterError(name, 'a contiguous row-major tensor', new Described('a strided view'));
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length)
    throw invalidParameterError(name, `data of length ${size} (its shape)`, new Described(`length ${data.length}`), RangeError);
  return { data, shape };
}

/**
 * The modality-shuffled rows: batch * k rows of dim values, k >= 1 (k = 0 when batch is 0).
 * A tensor must be [batch, k, dim] or [batch * k, dim]: [k, batch, dim] holds the same
 * number of values in another order, and must not be read as if it were the first.
 */
export function readShuffled(value: unknown, batch: number, dim: number): { data: Float32Array; k: number } {
  const { data, shape } = readMatrix(value, 'shuffled');
  const n = batch * dim;
  if (n === 0 ? data.length !== 0 : data.length === 0 || data.length % n !== 0)
    throw invalidParameterError('shuffled', `a length that is a whole multiple of ${n} (batch * k * dim)`, new Described(`length ${data.length}`), RangeError);
  const k = n === 0 ? 0 : data.length / n;
  if (shape && shape.length > 1) {
    const rowMajor = shape.length === 2 ? shape[1] === dim : shape.length === 3 && shape[0] === batch && shape[2] === dim;
    if (!rowMajor)
      throw invalidParameterError('shuffled', `shape [${batch}, ${k}, ${dim}] or [${batch * k}, ${dim}] (batch, k, dim)`, new Described(`shape [${shape.join(', ')}]`), RangeError);
  }
  return { data, k };
}

export function isMatrix(value: unknown): value is Matrix {
  return value instanceof Float32Array || isTensorLike(value);
}

export { describe };
