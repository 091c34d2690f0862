// One model's embeddings from a directory of .npy files (layout: README, "Evaluation
// and the report command"):
//   query.npy     B x D      float32   required
//   fused.npy     B x D      float32   required  m_i = H(t_i, v_i)
//   visual.npy    B x D      float32   optional  F_v  (modality balance)
//   text.npy      B x D      float32   optional  F_t  (modality balance)
//   shuffled.npy  B x K x D  float32   optional  s_ik = H(t_i, v_pi(i))  (score separation)
//   gallery.npy   N x D      float32   optional  retrieval gallery (default: fused)
//   targets.npy   B          integer   optional  gallery row answering query i (default: i)
import * as path from 'node:path';
import { exists, type NpyMatrix, readFloatNpy, readIntNpy } from './npy';

export interface ModelData {
  name: string;
  dir: string;
  batch: number;
  dim: number;
  query: NpyMatrix;
  fused: NpyMatrix;
  visual?: NpyMatrix;
  text?: NpyMatrix;
  shuffled?: NpyMatrix;
  /** K, when shuffled is present */
  k?: number;
  gallery: NpyMatrix;
  /** where the gallery came from: 'gallery.npy' or 'fused.npy' */
  gallerySource: string;
  targets: Int32Array;
}

function matrix(dir: string, file: string, rows: number | undefined, dim: number | undefined): NpyMatrix {
  const full = path.join(dir, file);
  const m = readFloatNpy(full);
  if (m.shape.length !== 2) throw new Error(`${full}: expected a 2-d array (rows x dim) but its shape is [${m.shape.join(', ')}]`);
  if (rows !== undefined && m.shape[0] !== rows)
    throw new Error(`${full}: expected ${rows} rows (as query.npy) but found ${m.shape[0]}`);
  if (dim !== undefined && m.shape[1] !== dim)
    throw new Error(`${full}: expected ${dim} columns (as query.npy) but found ${m.shape[1]}`);
  return m;
}

export function loadModel(dir: string, name: string): ModelData {
  for (const required of ['query.npy', 'fused.npy'])
    if (!exists(dir, required)) throw new Error(`${path.join(dir, required)} is missing (every model directory needs query.npy and fused.npy)`);
  const query = matrix(dir, 'query.npy', undefined, undefined);
  const [batch, dim] = query.shape;
  if (batch < 1 || dim < 1) throw new Error(`${path.join(dir, 'query.npy')}: empty array`);
  const fused = matrix(dir, 'fused.npy', batch, dim);
  const data: ModelData = { name, dir, batch, dim, query, fused, gallery: fused, gallerySource: 'fused.npy', targets: new Int32Array(0) };

  if (exists(dir, 'visual.npy')) data.visual = matrix(dir, 'visual.npy', batch, dim);
  if (exists(dir, 'text.npy')) data.text = matrix(dir, 'text.npy', batch, dim);
  if (exists(dir, 'shuffled.npy')) {
    const full = path.join(dir, 'shuffled.npy');
    const s = readFloatNpy(full);
    const [b, k, d] = s.shape.length === 3 ? s.shape : s.shape.length === 2 ? [s.shape[0], 1, s.shape[1]] : [NaN, NaN, NaN];
    if (b !== batch || d !== dim || !(k >= 1))
      throw new Error(`${full}: expected shape [${batch}, K, ${dim}] (batch, negatives per query, dim) but found [${s.shape.join(', ')}]`);
    data.shuffled = s;
    data.k = k;
  }
  if (exists(dir, 'gallery.npy')) {
    data.gallery = matrix(dir, 'gallery.npy', undefined, dim);
    data.gallerySource = 'gallery.npy';
  }
  if (exists(dir, 'targets.npy')) {
    const full = path.join(dir, 'targets.npy');
    const t = readIntNpy(full);
    if (t.data.length !== batch) throw new Error(`${full}: expected ${batch} targets (one per query) but found ${t.data.length}`);
    const cols = data.gallery.shape[0];
    const bad = t.data.findIndex((v) => v < 0 || v >= cols);
    if (bad >= 0) throw new Error(`${full}: target ${t.data[bad]} at index ${bad} is not a row of ${data.gallerySource} (${cols} rows)`);
    data.targets = t.data;
  } else {
    if (data.gallerySource === 'gallery.npy')
      throw new Error(`${path.join(dir, 'targets.npy')} is missing: with gallery.npy, say which gallery row answers each query`);
    data.targets = Int32Array.from({ length: batch }, (_, i) => i);
  }
  return data;
}
