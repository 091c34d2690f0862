// `mbvr report <model-dir> [<model-dir>]`: diagnostics of one model, or of two side by
// side (say a baseline and an MBVR-trained model), written as figures and a summary.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { computeModel, type ModelReport, type ModelValues } from './diagnostics';
import { recallSpec, renderSvg, rvtSpec, scoresSpec, svgToPng } from './figures';
import { loadModel } from './load';

export const usage = `Usage: mbvr report <model-dir> [<model-dir>] [options]

Reads each model's embeddings from .npy files (float32, C order) in its directory:
  query.npy (B x D), fused.npy (B x D)      required
  visual.npy, text.npy (B x D)              for the modality balance R_vt
  shuffled.npy (B x K x D)                  for positive vs MS-negative scores
  gallery.npy (N x D) + targets.npy (B)     retrieval gallery (default: fused.npy, target i = row i)
and writes to the output directory: summary.json, report.md, rvt.svg, scores.svg,
recall.svg (and .png of each when @resvg/resvg-js is installed).

Options:
  -o, --out <dir>       output directory (default: mbvr-report)
  -n, --names <a,b>     model names (default: the directory names)
  -k, --ks <1,5,10>     recall cut-offs (default: 1,5,10)
      --bins <n>        histogram bins (default: 40)
      --no-png          SVG only
  -h, --help            this text`;

export interface ReportOptions {
  out: string;
  names?: string[];
  ks: number[];
  bins: number;
  png: boolean;
}

export interface ReportResult {
  files: string[];
  models: ModelReport[];
}

function positiveList(text: string, flag: string): number[] {
  const values = text.split(',').map((s) => Number(s.trim()));
  if (values.length === 0 || !values.every((v) => Number.isSafeInteger(v) && v >= 1))
    throw new UsageError(`${flag} takes positive integers separated by commas, got '${text}'`);
  return values;
}

class UsageError extends Error {}

function markdown(models: ModelReport[], ks: number[], figures: string[]): string {
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
  lines.push('', ...figures.map((file) => `![${file}](${file})`), '');
  return lines.join('\n');
}

/** Runs the report; returns the files written (paths inside options.out). */
export async function runReport(dirs: string[], options: ReportOptions): Promise<ReportResult> {
  if (dirs.length < 1 || dirs.length > 2) throw new UsageError(`report takes one or two model directories, got ${dirs.length}`);
  const names = options.names ?? dirs.map((d) => path.basename(path.resolve(d)));
  if (names.length !== dirs.length) throw new UsageError(`--names has ${names.length} names for ${dirs.length} directories`);
  if (new Set(names).size !== names.length) names.forEach((_, i) => (names[i] = `${names[i]} (${i + 1})`));

  const models: { report: ModelReport; values: ModelValues }[] = [];
  for (let i = 0; i < dirs.length; i++) models.push(computeModel(loadModel(dirs[i], names[i]), options.ks));

  fs.mkdirSync(options.out, { recursive: true });
  const files: string[] = [];
  const write = (file: string, content: string | Uint8Array) => {
    fs.writeFileSync(path.join(options.out, file), content);
    files.push(file);
  };
  const figures: [string, Record<string, unknown> | undefined][] = [
    ['rvt', rvtSpec(models, options.bins)],
    ['scores', scoresSpec(models, options.bins)],
    ['recall', recallSpec(models, options.ks)],
  ];
  const drawn: string[] = [];
  for (const [name, spec] of figures) {
    if (!spec) continue;
    const svg = await renderSvg(spec);
    write(`${name}.svg`, svg);
    write(`${name}.vl.json`, JSON.stringify(spec, null, 1));
    drawn.push(`${name}.svg`);
    if (options.png) {
      const png = svgToPng(svg);
      if (png) write(`${name}.png`, png);
    }
  }
  const reports = models.map((m) => m.report);
  write('summary.json', `${JSON.stringify({ generated: new Date().toISOString(), ks: options.ks, models: reports }, null, 2)}\n`);
  write('report.md', markdown(reports, options.ks, drawn));
  return { files, models: reports };
}

/** The command line; resolves to the exit code (0 done, 1 failed, 2 bad usage). */
export async function main(argv: string[], log: (line: string) => void = console.log, error: (line: string) => void = console.error): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      log(usage);
      return command === undefined ? 2 : 0;
    }
    if (command !== 'report') throw new UsageError(`unknown command '${command}' (the command is 'report')`);
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o', default: 'mbvr-report' },
        names: { type: 'string', short: 'n' },
        ks: { type: 'string', short: 'k', default: '1,5,10' },
        bins: { type: 'string', default: '40' },
        'no-png': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      log(usage);
      return 0;
    }
    const options: ReportOptions = {
      out: values.out as string,
      names: values.names === undefined ? undefined : (values.names as string).split(',').map((s) => s.trim()),
      ks: positiveList(values.ks as string, '--ks'),
      bins: positiveList(values.bins as string, '--bins')[0],
      png: !values['no-png'],
    };
    const result = await runReport(positionals, options);
    for (const m of result.models) {
      const r = m.retrieval;
      const recall = Object.entries(r.recall).map(([k, v]) => `R@${k} ${(100 * v).toFixed(1)}%`).join(', ');
      const rvt = m.modalityBalance ? `, R_vt median ${m.modalityBalance.summary.median.toFixed(3)}` : '';
      const auc = m.scoreSeparation ? `, AUC ${m.scoreSeparation.auc.toFixed(3)}` : '';
      log(`${m.name}: ${recall}, median rank ${r.medianRank}${rvt}${auc}`);
    }
    log(`wrote ${result.files.length} files to ${path.resolve(options.out)}: ${result.files.join(', ')}`);
    return 0;
  } catch (e) {
    const usageProblem = e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    error(`mbvr: ${(e as Error).message}`);
    if (usageProblem) error("Run 'mbvr --help' for usage.");
    return usageProblem ? 2 : 1;
  }
}
