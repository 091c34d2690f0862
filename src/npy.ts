// NumPy .npy files: float32, int32 and int64 arrays in C order, little-endian, as
// numpy.save writes them (format: numpy.lib.format). Reads header versions 1.0, 2.0 and
// 3.0; writes 1.0, or 2.0 when the header does not fit in 1.0's 65535 bytes.
//
//   saveNpy('query.npy', query, [batch, dim]);
//   const { data, shape, dtype } = loadNpy('query.npy');  // data: Float32Array
//
// int64 ('<i8', numpy's default integer) loads as an Int32Array when every value fits
// in int32 -- the usual case for labels and row numbers, and what mbvr's functions take
// -- and as a BigInt64Array otherwise; `dtype` still says 'int64'. Anything else is an
// Error that names the file and says what to do (convert to float32, to C order, ...).
import * as fs from 'node:fs';
import { Described, describe, invalidParameterError } from './errors';

export type NpyDtype = 'float32' | 'int32' | 'int64';

export interface NpyArray {
  data: Float32Array | Int32Array | BigInt64Array;
  shape: number[];
  /** the dtype stored in the file */
  dtype: NpyDtype;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<i4': 'int32', '<i8': 'int64' };
const ITEMSIZE: Record<NpyDtype, number> = { float32: 4, int32: 4, int64: 8 };
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** What to say about a dtype mbvr does not read. */
function unsupported(descr: string): string {
  const kind = descr.slice(1);
  const order = descr[0];
  if (order === '>' && ['f4', 'i4', 'i8'].includes(kind))
    return `big-endian data (dtype '${descr}'); save it little-endian: a.astype('<${kind}')`;
  if (/^f\d+$/.test(kind)) return `unsupported dtype '${descr}' (float${8 * Number(kind.slice(1))}); convert it with a.astype('float32') before saving`;
  if (/^[iub]\d+$/.test(kind)) return `unsupported dtype '${descr}'; convert it with a.astype('int32') (or 'int64') before saving`;
  return `unsupported dtype '${descr}'; mbvr reads float32 ('<f4'), int32 ('<i4') and int64 ('<i8')`;
}

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/** The header dictionary, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } */
function parseHeader(text: string, file: string): Header {
  const bad = (what: string) => new Error(`${file}: unreadable .npy header (${what}): ${text.trim().slice(0, 200)}`);
  for (const key of ['descr', 'fortran_order', 'shape']) {
    const times = text.match(new RegExp(`['"]${key}['"]\\s*:`, 'g'))?.length ?? 0;
    if (times > 1) throw bad(`'${key}' appears ${times} times`);
  }
  const descr = /['"]descr['"]\s*:\s*(['"])(.*?)\1/.exec(text);
  if (!descr) {
    if (/['"]descr['"]\s*:\s*\[/.test(text)) throw new Error(`${file}: a structured array (a dtype of named fields); save one plain float32 or integer array`);
    throw bad("no 'descr'");
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (!fortran) throw bad("no 'fortran_order'");
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!shapeText) throw bad("no 'shape'");
  const shape = shapeText[1]
    .split(',')
    .map((s) => s.trim().replace(/L$/, ''))
    .filter((s) => s.length > 0)
    .map(Number);
  if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0)) throw bad('shape is not a tuple of sizes');
  // '=' is the writer's native byte order; '|' (no order) does not apply to these sizes.
  const native = descr[2].startsWith('=') && littleEndian ? `<${descr[2].slice(1)}` : descr[2];
  return { descr: native, fortranOrder: fortran[1] === 'True', shape };
}

/** Reads a .npy file (see the top of this file for what it returns and refuses). */
export function loadNpy(file: string): NpyArray {
  if (typeof file !== 'string') throw invalidParameterError('path', 'a string', file);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const why = e.code === 'EISDIR' ? 'a directory, not a .npy file' : e.code === 'ENOENT' ? 'no such file' : e.message;
    throw Object.assign(new Error(`${file}: cannot read it: ${why}`), { code: e.code });
  }
  if (bytes.length < 8 || !bytes.subarray(0, 6).equals(MAGIC)) throw new Error(`${file}: not a .npy file (it does not start with \\x93NUMPY)`);
  const [major, minor] = [bytes[6], bytes[7]];
  if (major < 1 || major > 3) throw new Error(`${file}: unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are read)`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw new Error(`${file}: truncated header: the file ends after ${bytes.length} bytes`);
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const dataStart = 8 + lengthBytes + headerLength;
  if (bytes.length < dataStart) throw new Error(`${file}: truncated header: expected ${headerLength} bytes of header, found ${bytes.length - 8 - lengthBytes}`);
  const header = parseHeader(bytes.toString(major === 3 ? 'utf8' : 'latin1', 8 + lengthBytes, dataStart), file);

  const dtype = DESCR[header.descr];
  if (!dtype) throw new Error(`${file}: ${unsupported(header.descr)}`);
  const count = header.shape.reduce((a, b) => a * b, 1);
  if (header.fortranOrder && header.shape.filter((n) => n > 1).length > 1)
    throw new Error(`${file}: stored in Fortran order; save it in C order: numpy.save(path, numpy.ascontiguousarray(a))`);
  const expected = count * ITEMSIZE[dtype];
  const found = bytes.length - dataStart;
  if (!Number.isSafeInteger(expected) || found !== expected)
    throw new Error(`${file}: ${found < expected ? 'truncated data: ' : ''}expected ${expected} bytes of data (shape [${header.shape.join(', ')}], ${dtype}), found ${found}`);

  // A fresh, aligned copy (the data may start at any offset in the file's buffer).
  const body = bytes.subarray(dataStart);
  const copy = <T extends Float32Array | Int32Array | BigInt64Array>(out: T): T => {
    if (littleEndian) new Uint8Array(out.buffer).set(body);
    else {
      const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
      for (let i = 0; i < out.length; i++)
        if (out instanceof Float32Array) out[i] = view.getFloat32(4 * i, true);
        else if (out instanceof Int32Array) out[i] = view.getInt32(4 * i, true);
        else out[i] = view.getBigInt64(8 * i, true);
    }
    return out;
  };
  const shape = header.shape;
  if (dtype === 'float32') return { data: copy(new Float32Array(count)), shape, dtype };
  if (dtype === 'int32') return { data: copy(new Int32Array(count)), shape, dtype };
  const wide = copy(new BigInt64Array(count));
  const narrow = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = wide[i];
    if (v < -2147483648n || v > 2147483647n) return { data: wide, shape, dtype };
    narrow[i] = Number(v);
  }
  return { data: narrow, shape, dtype };
}

/** The header block: magic, version, length, dictionary padded to a multiple of 64. */
function headerBytes(descr: string, shape: number[]): Buffer {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  for (const major of [1, 2]) {
    const prefix = 8 + (major === 1 ? 2 : 4);
    const padded = Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix; // dict + spaces + '\n'
    if (major === 1 && padded > 65535) continue;
    const out = Buffer.alloc(prefix + padded, 0x20);
    MAGIC.copy(out, 0);
    out[6] = major;
    out[7] = 0;
    if (major === 1) out.writeUInt16LE(padded, 8);
    else out.writeUInt32LE(padded, 8);
    out.write(dict, prefix, 'latin1');
    out[prefix + padded - 1] = 0x0a;
    return out;
  }
  throw new Error('unreachable');
}

/**
 * Writes `array` to `file` as .npy: Float32Array as '<f4', Int32Array as '<i4',
 * BigInt64Array as '<i8', with `shape` (default [array.length]) in C order.
 */
export function saveNpy(file: string, array: Float32Array | Int32Array | BigInt64Array, shape?: readonly number[]): void {
  if (typeof file !== 'string') throw invalidParameterError('path', 'a string', file);
  const descr = array instanceof Float32Array ? '<f4' : array instanceof Int32Array ? '<i4' : array instanceof BigInt64Array ? '<i8' : undefined;
  if (!descr) throw invalidParameterError('array', 'a Float32Array, Int32Array or BigInt64Array', array);
  const dims = shape === undefined ? [array.length] : shape;
  if (!Array.isArray(dims)) throw invalidParameterError('shape', 'an array of sizes', dims);
  const shown = new Described(`[${dims.map((n) => (typeof n === 'number' ? String(n) : describe(n))).join(', ')}]`);
  if (!dims.every((n) => Number.isSafeInteger(n) && n >= 0))
    throw invalidParameterError('shape', 'an array of whole numbers >= 0', shown, dims.every((n) => typeof n === 'number') ? RangeError : TypeError);
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== array.length)
    throw invalidParameterError('shape', `sizes whose product is ${array.length} (the array's length)`, shown, RangeError);
  let body: Uint8Array;
  try {
    body = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  } catch {
    throw invalidParameterError('array', 'an array whose buffer is usable', new Described('one whose ArrayBuffer is detached (transferred)'));
  }
  if (!littleEndian) {
    body = new Uint8Array(array.byteLength);
    const view = new DataView(body.buffer);
    for (let i = 0; i < array.length; i++)
      if (array instanceof Float32Array) view.setFloat32(4 * i, array[i], true);
      else if (array instanceof Int32Array) view.setInt32(4 * i, array[i], true);
      else view.setBigInt64(8 * i, array[i], true);
  }
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, headerBytes(descr, [...dims]));
    for (let at = 0; at < body.length; ) at += fs.writeSync(fd, body, at, Math.min(body.length - at, 1 << 30));
  } finally {
    fs.closeSync(fd);
  }
}
