// The demo's figures: each run's test embeddings go to a directory of .npy files in the
// layout `mbvr report` reads (src/report/load.ts), and the report module draws them --
// R_vt histograms, positive vs MS-negative scores, recall@k -- into <out>/report/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Embeddings } from './train';

/** A NumPy .npy file (format 1.0): little-endian float32 or int32, C order. */
export function writeNpy(file: string, data: Float32Array | Int32Array, shape: number[]): void {
  const descr = data instanceof Float32Array ? '<f4' : '<i4';
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`;
  // magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in \n.
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength); // the platform is little-endian (x64, arm64)
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), body]));
}

/** Writes query, fused, visual, text, shuffled, gallery and targets .npy; returns the directory. */
export function writeEmbeddings(dir: string, e: Embeddings): string {
  fs.mkdirSync(dir, { recursive: true });
  const rows = e.targets.length;
  const d = e.dim;
  writeNpy(path.join(dir, 'query.npy'), e.query, [rows, d]);
  writeNpy(path.join(dir, 'fused.npy'), e.fused, [rows, d]);
  writeNpy(path.join(dir, 'visual.npy'), e.visual, [rows, d]);
  writeNpy(path.join(dir, 'text.npy'), e.text, [rows, d]);
  writeNpy(path.join(dir, 'shuffled.npy'), e.shuffled, [rows, e.shuffled.length / (rows * d), d]);
  writeNpy(path.join(dir, 'gallery.npy'), e.gallery, [e.gallery.length / d, d]);
  writeNpy(path.join(dir, 'targets.npy'), e.targets, [rows]);
  return dir;
}

/** Runs the report on the runs' directories; returns one line saying what it wrote. */
export async function writeFigures(dirs: string[], names: string[], out: string): Promise<string> {
  let report: typeof import('../../src/report/cli');
  try {
    report = await import('../../src/report/cli');
  } catch (error) {
    return `figures: skipped, the report module did not load (${(error as Error).message.split('\n')[0]}); run \`mbvr report ${dirs.join(' ')}\` later`;
  }
  try {
    const result = await report.runReport(dirs, { out, names, ks: [1, 5, 10], bins: 40, png: true });
    return `figures: ${result.files.filter((f) => /\.(svg|png)$/.test(f)).join(', ')} and report.md in ${out}`;
  } catch (error) {
    // e.g. an addon built before the evaluation functions the report computes with
    return `figures: skipped, the report failed (${(error as Error).message.split('\n')[0]}); run \`mbvr report ${dirs.join(' ')}\` later`;
  }
}
