// One model's embeddings from a directory of .npy files (docs/evaluation.md, "mbvr report"):
//   query.npy     B x D                 float32   required
//   fused.npy     B x D                 float32   required  m_i = H(t_i, v_i)
//   visual.npy    B x D                 float32   optional  F_v  (modality balance)
//   text.npy      B x D                 float32   optional  F_t  (modality balance)
//   shuffled.npy  B x K x D or B*K x D  float32   optional  s_ik = H(t_i, v_pi(i))  (score separation)
//   gallery.npy   N x D                 float32   optional  retrieval gallery (default: fused)
//   targets.npy   B (or B x 1)          int32/64  optional  gallery row answering query i (default: i)
// Every problem is an Error that starts with the file's path and says what is wrong.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNpy } from '../npy';

export interface NpyMatrix {
  data: Float32Array;
  shape: number[];
}

export interface ModelData {
  name: string;
  dir: string;
  batch: number;
  dim: number;
  query: NpyMatrix;
  fused: NpyMatrix;
  visual?: NpyMatrix;
  text?: NpyMatrix;
  /** B x K x D (a B*K x D file is read as such) */
  shuffled?: NpyMatrix;
  /** K, when shuffled is present */
  k?: number;
  gallery: NpyMatrix;
  /** where the gallery came from: 'gallery.npy' or 'fused.npy' */
  gallerySource: string;
  targets: Int32Array;
}

const LABEL = { float32: "float32 ('<f4')", int32: "int32 ('<i4')", int64: "int64 ('<i8')" };

/** A float32 array whose values are all finite. */
function readFloats(file: string): NpyMatrix {
  const { data, shape, dtype } = loadNpy(file);
  if (!(data instanceof Float32Array)) throw new Error(`${file}: expected float32 values (dtype '<f4') but found ${LABEL[dtype]}; save it with a.astype('float32')`);
  const cols = shape.length > 1 ? shape[shape.length - 1] : 1;
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i]))
      throw new Error(`${file}: ${data[i]} at index ${i}${shape.length === 2 ? ` (row ${Math.floor(i / cols)}, column ${i % cols})` : ''}; every value must be finite`);
  return { data, shape };
}

function matrix(dir: string, file: string, rows: number | undefined, dim: number | undefined): NpyMatrix {
  const full = path.join(dir, file);
  const m = readFloats(full);
  if (m.shape.length !== 2) throw new Error(`${full}: expected a 2-d array (rows x dim) but its shape is [${m.shape.join(', ')}]`);
  if (rows !== undefined && m.shape[0] !== rows) throw new Error(`${full}: expected ${rows} rows (as query.npy) but found ${m.shape[0]}`);
  if (dim !== undefined && m.shape[1] !== dim) throw new Error(`${full}: expected ${dim} columns (as query.npy) but found ${m.shape[1]}`);
  return m;
}

/** shuffled.npy as B x K x D: a 3-d file as is, a 2-d one of B*K rows split by rows. */
function shuffledOf(dir: string, batch: number, dim: number): { m: NpyMatrix; k: number } {
  const full = path.join(dir, 'shuffled.npy');
  const s = readFloats(full);
  const expected = `expected shape [${batch}, K, ${dim}] or [${batch} * K, ${dim}] (batch, negatives per query, dim) but found [${s.shape.join(', ')}]`;
  let k = NaN;
  if (s.shape.length === 3 && s.shape[0] === batch && s.shape[2] === dim) k = s.shape[1];
  else if (s.shape.length === 2 && s.shape[1] === dim && s.shape[0] % batch === 0) k = s.shape[0] / batch;
  if (!(k >= 1)) throw new Error(`${full}: ${expected}`);
  return { m: { data: s.data, shape: [batch, k, dim] }, k };
}

/** targets.npy: one integer gallery row per query. */
function targetsOf(dir: string, batch: number, cols: number, gallerySource: string): Int32Array {
  const full = path.join(dir, 'targets.npy');
  const { data, shape, dtype } = loadNpy(full);
  if (data instanceof Float32Array) throw new Error(`${full}: expected integers (int32 or int64) but found ${LABEL[dtype]}; save it with a.astype('int64')`);
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1)) || shape[0] !== batch)
    throw new Error(`${full}: expected ${batch} targets, shape [${batch}] (one per query), but found shape [${shape.join(', ')}]`);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < 0 || v >= cols) throw new Error(`${full}: target ${v} at index ${i} is not a row of ${gallerySource} (${cols} rows)`);
  }
  // In range, so small enough for int32 even when the file holds int64.
  return data instanceof Int32Array ? data : Int32Array.from(data, (v) => Number(v));
}

export function loadModel(dir: string, name: string): ModelData {
  const exists = (file: string) => fs.existsSync(path.join(dir, file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory (each model is a directory of .npy files)`);
  for (const required of ['query.npy', 'fused.npy'])
    if (!exists(required)) throw new Error(`${path.join(dir, required)} is missing (every model directory needs query.npy and fused.npy)`);
  const query = matrix(dir, 'query.npy', undefined, undefined);
  const [batch, dim] = query.shape;
  if (batch < 1 || dim < 1) throw new Error(`${path.join(dir, 'query.npy')}: empty array (shape [${query.shape.join(', ')}])`);
  const fused = matrix(dir, 'fused.npy', batch, dim);
  const data: ModelData = { name, dir, batch, dim, query, fused, gallery: fused, gallerySource: 'fused.npy', targets: new Int32Array(0) };

  if (exists('visual.npy')) data.visual = matrix(dir, 'visual.npy', batch, dim);
  if (exists('text.npy')) data.text = matrix(dir, 'text.npy', batch, dim);
  if (exists('shuffled.npy')) {
    const { m, k } = shuffledOf(dir, batch, dim);
    data.shuffled = m;
    data.k = k;
  }
  if (exists('gallery.npy')) {
    data.gallery = matrix(dir, 'gallery.npy', undefined, dim);
    if (data.gallery.shape[0] < 1) throw new Error(`${path.join(dir, 'gallery.npy')}: empty array (shape [${data.gallery.shape.join(', ')}])`);
    data.gallerySource = 'gallery.npy';
  }
  if (exists('targets.npy')) data.targets = targetsOf(dir, batch, data.gallery.shape[0], data.gallerySource);
  else if (data.gallerySource === 'gallery.npy')
    throw new Error(`${path.join(dir, 'targets.npy')} is missing: with gallery.npy, say which gallery row answers each query`);
  else data.targets = Int32Array.from({ length: batch }, (_, i) => i);
  return data;
}
