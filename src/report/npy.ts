// Reading NumPy .npy files (the `npyjs` parser) into what the evaluation functions take:
// float32 matrices in C order, and integer vectors.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'npyjs';

export interface NpyMatrix {
  data: Float32Array;
  shape: number[];
}

function load(file: string) {
  const bytes = fs.readFileSync(file);
  // A fresh, exactly sized ArrayBuffer: the parser views it at the header's end.
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let array;
  try {
    array = parse(buffer);
  } catch (cause) {
    throw new Error(`${file}: not a readable .npy file (${(cause as Error).message})`, { cause });
  }
  if (array.fortranOrder)
    throw new Error(`${file}: stored in Fortran order; save it in C order (numpy.ascontiguousarray) first`);
  const size = array.shape.reduce((a, b) => a * b, 1);
  const data = array.data as unknown as ArrayLike<number | bigint>;
  if (data.length !== size)
    throw new Error(`${file}: holds ${data.length} values but its shape [${array.shape.join(', ')}] needs ${size}`);
  return { data, shape: array.shape, dtype: array.dtype };
}

/** A float tensor as float32 (float64 and float16 files are converted). */
export function readFloatNpy(file: string): NpyMatrix {
  const { data, shape, dtype } = load(file);
  if (data instanceof Float32Array) return { data, shape };
  if (data instanceof Float64Array) return { data: Float32Array.from(data), shape };
  throw new Error(`${file}: expected float32 values (dtype '<f4') but found dtype '${dtype}'`);
}

/** An integer vector as Int32Array (any integer dtype whose values fit). */
export function readIntNpy(file: string): { data: Int32Array; shape: number[] } {
  const { data, shape, dtype } = load(file);
  const integer = /^[iu][1248]$/.test(dtype);
  if (!integer) throw new Error(`${file}: expected integers (e.g. dtype '<i4' or '<i8') but found dtype '${dtype}'`);
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (v < -2147483648 || v > 2147483647) throw new Error(`${file}: value ${v} at index ${i} does not fit in int32`);
    out[i] = v;
  }
  return { data: out, shape };
}

export function exists(dir: string, name: string): boolean {
  return fs.existsSync(path.join(dir, name));
}
