// report() as the package's entry exports it: the report's modules (the .npy readers,
// the diagnostics, the figure specs) load on the first call, not with require('mbvr').
import type { ReportOptions, ReportResult } from './report';

/** Diagnostics of one or two model directories of .npy files, written to options.out
 * (docs/evaluation.md, "mbvr report and report()"). */
export async function report(dirs: string[], options?: ReportOptions): Promise<ReportResult> {
  const { report: run } = await import('./report');
  return run(dirs, options);
}
