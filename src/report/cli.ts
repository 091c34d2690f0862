// `mbvr report <model-dir> [<model-dir>]`: report() (report.ts) on the command line.
// Exit codes: 0 done, 1 failed (the message names the file and what is wrong), 2 bad
// usage (the message names the flag).
import { parseArgs } from 'node:util';
import { MAX_BINS, report, type ReportOptions } from './report';

export const usage = `Usage: mbvr report <model-dir> [<model-dir>] [options]

Reads each model's embeddings from .npy files (float32, C order) in its directory:
  query.npy (B x D), fused.npy (B x D)      required
  visual.npy, text.npy (B x D)              for the modality balance R_vt
  shuffled.npy (B x K x D, or B*K x D)      for positive vs MS-negative scores
  gallery.npy (N x D) + targets.npy (B)     retrieval gallery (default: fused.npy, target i = row i)
and writes to the output directory: summary.json, report.md, rvt.svg, scores.svg,
recall.svg (with vega and vega-lite installed), a .png of each (with @resvg/resvg-js)
and each figure's Vega-Lite spec (.vl.json).

Options:
  -o, --out <dir>       output directory (default: mbvr-report)
  -n, --names <a,b>     model names (default: the directory names)
  -k, --ks <1,5,10>     recall cut-offs (default: 1,5,10)
      --bins <n>        histogram bins, 1 to ${MAX_BINS} (default: 40)
      --no-png          SVG only
  -h, --help            this text`;

class UsageError extends Error {}

/** "1,5,10" -> [1, 5, 10]: whole numbers from 1 to max, else a UsageError naming the flag. */
function wholeNumbers(text: string, flag: string, max: number, what: string, one = false): number[] {
  const values = text.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : NaN));
  if ((one && values.length !== 1) || !values.every((v) => Number.isSafeInteger(v) && v >= 1 && v <= max))
    throw new UsageError(`${flag} takes ${what}, got '${text}'`);
  return values;
}

/** Resolves to the exit code. */
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
    if (positionals.length < 1 || positionals.length > 2)
      throw new UsageError(`report takes one or two model directories, got ${positionals.length}`);
    const names = values.names === undefined ? undefined : (values.names as string).split(',').map((s) => s.trim());
    if (names && (names.length !== positionals.length || names.some((n) => n.length === 0)))
      throw new UsageError(`--names takes one name per directory (${positionals.length}), separated by commas, got '${values.names}'`);
    const options: ReportOptions = {
      out: values.out as string,
      names,
      ks: wholeNumbers(values.ks as string, '--ks', Number.MAX_SAFE_INTEGER, 'positive integers separated by commas'),
      bins: wholeNumbers(values.bins as string, '--bins', MAX_BINS, `a whole number from 1 to ${MAX_BINS}`, true)[0],
      png: !values['no-png'],
    };

    const result = await report(positionals, options);
    for (const m of result.summary.models) {
      const r = m.retrieval;
      const recall = Object.entries(r.recall).map(([k, v]) => `R@${k} ${(100 * v).toFixed(1)}%`).join(', ');
      const rvt = m.modalityBalance ? `, R_vt median ${m.modalityBalance.summary.median.toFixed(3)}` : '';
      const auc = m.scoreSeparation ? `, AUC ${m.scoreSeparation.auc.toFixed(3)}` : '';
      log(`${m.name}: ${recall}, median rank ${r.medianRank}${rvt}${auc}`);
    }
    log(`wrote ${result.files.length} files to ${result.out}: ${result.files.join(', ')}`);
    for (const s of result.summary.figures.skipped) error(`mbvr: note: skipped ${s}`);
    return 0;
  } catch (e) {
    const usageProblem = e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    error(`mbvr: ${(e as Error).message}`);
    if (usageProblem) error("Run 'mbvr --help' for usage.");
    return usageProblem ? 2 : 1;
  }
}

