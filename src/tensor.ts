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
    if (typeof value.dataSync !== 'function')
      throw invalidParameterError(`${name}.data`, 'a Float32Array', new Described('a function'));
    data = value.dataSync();
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

export function isMatrix(value: unknown): value is Matrix {
  return value instanceof Float32Array || isTensorLike(value);
}

export { describe };
