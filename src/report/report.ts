// report(): diagnostics of one model, or of two side by side (say a baseline and an
// MBVR-trained model), from directories of .npy files (load.ts) to a directory holding
// summary.json, report.md and the figures. `mbvr report` (cli.ts) is this on the command
// line; `import { report } from 'mbvr'` is the same from code.
//
// The figures need the optional peer dependencies vega and vega-lite (SVG) and
// @resvg/resvg-js (PNG). Without them the numbers are still written -- summary.json,
// report.md and each figure's Vega-Lite spec (*.vl.json, renderable elsewhere) -- and
// `figures.skipped` (in the result and in summary.json) says what was left out and what
// to install.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Described, invalidParameterError } from '../errors';
import { requireKnownKeys } from '../validate';
import { computeModel, type ModelReport, type ModelValues } from './diagnostics';
import { recallSpec, RendererMissing, renderSvg, rvtSpec, scoresSpec, svgToPng } from './figures';
import { loadModel } from './load';

/** Histogram bins allowed: more would not show on a 620-pixel-wide figure anyway. */
export const MAX_BINS = 1000;

export interface ReportOptions {
  /** output directory ['mbvr-report'] */
  out?: string;
  /** model names [the directories' names] */
  names?: string[];
  /** recall cut-offs [[1, 5, 10]] */
  ks?: number[];
  /** histogram bins, 1 to 1000 [40] */
  bins?: number;
  /** a PNG beside each SVG (needs @resvg/resvg-js) [true] */
  png?: boolean;
}

export interface ReportSummary {
  /** when it was made (ISO 8601) */
  generated: string;
  ks: number[];
  models: ModelReport[];
  figures: {
    /** the image files written */
    drawn: string[];
    /** what was left out and why, e.g. "PNG: @resvg/resvg-js is not installed (...)" */
    skipped: string[];
  };
}

export interface ReportResult {
  /** what summary.json holds */
  summary: ReportSummary;
  /** the output directory */
  out: string;
  /** the files written, names inside `out` */
  files: string[];
}

function integerList(value: unknown, name: string, expected: string, ok: (v: number) => boolean): number[] {
  if (!Array.isArray(value)) throw invalidParameterError(name, expected, value);
  if (value.length === 0 || !value.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && ok(v)))
    throw invalidParameterError(name, expected, new Described(`[${value.map(String).join(', ')}]`), RangeError);
  return value;
}

function checkOptions(dirs: unknown, options: unknown): { dirs: string[]; out: string; names: string[]; ks: number[]; bins: number; png: boolean } {
  const two = 'an array of one or two model directories';
  if (!Array.isArray(dirs) || !dirs.every((d) => typeof d === 'string')) throw invalidParameterError('dirs', two, dirs);
  if (dirs.length < 1 || dirs.length > 2) throw invalidParameterError('dirs', two, new Described(`${dirs.length} directories`), RangeError);
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidParameterError('options', 'an object', options);
  const o = { ...options } as ReportOptions;
  requireKnownKeys(o as Record<string, unknown>, ['out', 'names', 'ks', 'bins', 'png'], 'options');
  const out = o.out ?? 'mbvr-report';
  if (typeof out !== 'string' || out.length === 0) throw invalidParameterError('out', 'a directory path', out);
  const names = o.names ?? dirs.map((d) => path.basename(path.resolve(d)));
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && n.length > 0))
    throw invalidParameterError('names', 'an array of non-empty strings', names);
  if (names.length !== dirs.length)
    throw invalidParameterError('names', `${dirs.length} name${dirs.length > 1 ? 's' : ''} (one per directory)`, new Described(`${names.length}`), RangeError);
  const ks = integerList(o.ks ?? [1, 5, 10], 'ks', 'a non-empty array of positive integers', (v) => v >= 1);
  const bins = o.bins ?? 40;
  if (typeof bins !== 'number') throw invalidParameterError('bins', `an integer from 1 to ${MAX_BINS}`, bins);
  if (!Number.isInteger(bins) || bins < 1 || bins > MAX_BINS) throw invalidParameterError('bins', `an integer from 1 to ${MAX_BINS}`, bins, RangeError);
  const png = o.png ?? true;
  if (typeof png !== 'boolean') throw invalidParameterError('png', 'a boolean', png);
  // Two models of one name would share a column: number them.
  const unique = new Set(names).size === names.length ? [...names] : names.map((n, i) => `${n} (${i + 1})`);
  return { dirs: [...dirs], out, names: unique, ks: [...ks], bins, png };
}

function markdown(summary: ReportSummary): string {
  const { models, ks, figures } = summary;
  const f = (v: number | undefined, digits = 3) => (v === undefined ? 'n/a' : v.toFixed(digits));
  const lines = ['# mbvr report', ''];
  lines.push(`| model | B | D | ${ks.map((k) => `R@${k}`).join(' | ')} | median rank | mean rank | R_vt median | R_vt p10 to p90 | AUC pos > MS neg |`);
  lines.push(`|${' --- |'.repeat(ks.length + 8)}`);
  for (const m of models) {
    const mb = m.modalityBalance?.summary;
    lines.push(
      `| ${m.name} | ${m.batch} | ${m.dim} | ${ks.map((k) => `${(100 * m.retrieval.recall[String(k)]).toFixed(1)}%`).join(' | ')} | ` +
        `${f(m.retrieval.medianRank, 1)} | ${f(m.retrieval.meanRank, 1)} | ${f(mb?.median)} | ${mb ? `${f(mb.p10)} to ${f(mb.p90)}` : 'n/a'} | ${f(m.scoreSeparation?.auc)} |`,
    );
  }
  lines.push('');
  for (const m of models) for (const s of m.skipped) lines.push(`- ${m.name}: skipped ${s}`);
  for (const s of figures.skipped) lines.push(`- figures: skipped ${s}`);
  const svgs = figures.drawn.filter((file) => file.endsWith('.svg'));
  lines.push('', ...svgs.map((file) => `![${file}](${file})`), '');
  return lines.join('\n');
}

/** Computes the diagnostics of one or two model directories and writes them to `out`. */
export async function report(dirs: string[], options: ReportOptions = {}): Promise<ReportResult> {
  const o = checkOptions(dirs, options);
  const models: { report: ModelReport; values: ModelValues }[] = o.dirs.map((dir, i) => computeModel(loadModel(dir, o.names[i]), o.ks));

  fs.mkdirSync(o.out, { recursive: true });
  const files: string[] = [];
  const write = (file: string, content: string | Uint8Array) => {
    fs.writeFileSync(path.join(o.out, file), content);
    files.push(file);
  };
  const figures: ReportSummary['figures'] = { drawn: [], skipped: [] };
  const specs: [string, Record<string, unknown> | undefined][] = [
    ['rvt', rvtSpec(models, o.bins)],
    ['scores', scoresSpec(models, o.bins)],
    ['recall', recallSpec(models, o.ks)],
  ];
  let svgMissing: string | undefined;
  let pngMissing: string | undefined;
  for (const [name, spec] of specs) {
    if (!spec) continue;
    write(`${name}.vl.json`, JSON.stringify(spec, null, 1));
    if (svgMissing) continue;
    let svg: string;
    try {
      svg = await renderSvg(spec);
    } catch (error) {
      if (!(error instanceof RendererMissing)) throw error;
      svgMissing = error.message;
      continue;
    }
    write(`${name}.svg`, svg);
    figures.drawn.push(`${name}.svg`);
    if (!o.png || pngMissing) continue;
    try {
      write(`${name}.png`, svgToPng(svg));
      figures.drawn.push(`${name}.png`);
    } catch (error) {
      if (!(error instanceof RendererMissing)) throw error;
      pngMissing = error.message;
    }
  }
  const drawable = specs.filter(([, spec]) => spec).map(([name]) => name);
  if (svgMissing)
    figures.skipped.push(`${drawable.map((n) => `${n}.svg`).join(', ')}: ${svgMissing}; the Vega-Lite specs are in ${drawable.map((n) => `${n}.vl.json`).join(', ')}`);
  if (pngMissing) figures.skipped.push(`PNG: ${pngMissing}, or pass png: false (--no-png)`);

  const summary: ReportSummary = { generated: new Date().toISOString(), ks: o.ks, models: models.map((m) => m.report), figures };
  write('summary.json', `${JSON.stringify(summary, null, 2)}\n`);
  write('report.md', markdown(summary));
  return { summary, out: path.resolve(o.out), files };
}
