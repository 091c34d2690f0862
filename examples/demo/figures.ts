// The demo's figures: each run's test embeddings go to a directory of .npy files in the
// layout `mbvr report` reads (docs/evaluation.md), and the report draws them - R_vt
// histograms, positive vs MS-negative scores, recall@k - into <out>/report/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { report, saveNpy } from '../../src/index';
import type { Embeddings } from './train';

/** Writes query, fused, visual, text, shuffled, gallery and targets .npy; returns the directory. */
export function writeEmbeddings(dir: string, e: Embeddings): string {
  fs.mkdirSync(dir, { recursive: true });
  const rows = e.targets.length;
  const d = e.dim;
  saveNpy(path.join(dir, 'query.npy'), e.query, [rows, d]);
  saveNpy(path.join(dir, 'fused.npy'), e.fused, [rows, d]);
  saveNpy(path.join(dir, 'visual.npy'), e.visual, [rows, d]);
  saveNpy(path.join(dir, 'text.npy'), e.text, [rows, d]);
  saveNpy(path.join(dir, 'shuffled.npy'), e.shuffled, [rows, e.shuffled.length / (rows * d), d]);
  saveNpy(path.join(dir, 'gallery.npy'), e.gallery, [e.gallery.length / d, d]);
  saveNpy(path.join(dir, 'targets.npy'), e.targets, [rows]);
  return dir;
}

/** Runs the report on the runs' directories; returns one line saying what it wrote. */
export async function writeFigures(dirs: string[], names: string[], out: string): Promise<string> {
  const result = await report(dirs, { out, names, ks: [1, 5, 10], bins: 40 });
  const skipped = result.summary.figures.skipped;
  return (
    `figures: ${result.summary.figures.drawn.join(', ') || 'none'} and report.md in ${out}` +
    (skipped.length ? ` (skipped: ${skipped.join('; ')})` : '')
  );
}
