// `npm run demo`: trains a small video retriever twice on the synthetic search log of
// data.ts, with the same seed and budget -- once with the plain contrastive loss
// (baseline), once with MBVR -- and compares them: recall@1/5/10 overall and on the
// queries that need the visuals, the median R_vt (how much the fused embedding leans on
// vision), and the AUC of positives against modality-shuffled negatives.
// Writes out/demo/summary.json ({ baseline, mbvr }), training.json (options, loss and
// terms per step), each run's test embeddings as .npy (out/demo/baseline, out/demo/mbvr)
// and, through the report module, the figures (out/demo/report).
//
//   npm run demo -- --videos 3000 --epochs 8 --seed 1 --backend wasm --out out/demo
//
// Data parallel: under mpirun (or with --mpi) each global batch is split across the ranks
// and the ranks sum their shares of the model gradients (mbvr/mpi), training the same
// model as one process; rank 0 reports. `mpirun -np 2 npm run demo`.
/// <reference types="emscripten" />
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { defaultDatasetOptions, describeDataset, generateDataset, type DatasetOptions } from './data';
import { chooseMetrics } from './metrics';
import { defaultModelOptions } from './model';
import type { Communicator } from '../../src/communicator';
import { defaultTrainOptions, embedAll, evaluate, train, type Embeddings, type Evaluation, type Mode, type Progress, type TrainOptions } from './train';
import { writeEmbeddings, writeFigures } from './figures';

// In Node, @tensorflow/tfjs-layers is what registers tfjs's gradients (docs/trainers.md).
// A plain require: its typings do not pass tsc with skipLibCheck off.
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('@tensorflow/tfjs-layers');

interface Cli {
  data: DatasetOptions;
  train: TrainOptions;
  backend: 'wasm' | 'cpu';
  out: string;
  /** data parallel over MPI: --mpi, or launched by mpirun */
  mpi: boolean;
  /** at most this many steps per run */
  steps: number;
  /** one run only */
  only?: Mode;
  /** skip the evaluation, the report and the embeddings (losses only) */
  lossesOnly: boolean;
}

const HELP = `usage: npm run demo -- [options]
  --seed N            one seed for the data, the weights and the batch order [1]
  --videos N          gallery size [${defaultDatasetOptions.videos}]
  --test-queries N    held-out queries [${defaultDatasetOptions.testQueries}]
  --queries-per-video N  training queries per video [${defaultDatasetOptions.trainQueriesPerVideo}]
  --vision-share X    share of queries that need the visuals [${defaultDatasetOptions.visionShare}]
  --series-size N     videos that share one title [${defaultDatasetOptions.seriesSize}]
  --noise X           scale of the frame-feature noise [${defaultDatasetOptions.noise}]
  --epochs N          [${defaultTrainOptions.epochs}]
  --batch N           [${defaultTrainOptions.batch}]
  --lr X              Adam learning rate [${defaultTrainOptions.learningRate}]
  --temperature X     [${defaultTrainOptions.temperature}]
  --k N               MS negatives per row [${defaultTrainOptions.k}]
  --margin-scale X    dynamic margin = X * visual relevance [${defaultTrainOptions.marginScale}]
  --backend B         tfjs backend: wasm or cpu [wasm]
  --out DIR           [out/demo]
  --mpi               data parallel over MPI (on by itself under mpirun): each global
                      batch split across the ranks, model gradients summed (allReduce)
  --steps N           at most N steps per run
  --only MODE         one run: baseline or mbvr
  --losses-only       train and write training.json only (no evaluation, no report)`;

class UsageError extends Error {}

function parseArgs(argv: string[]): Cli {
  const launchedByMpi = ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'PMIX_RANK'].some((v) => process.env[v] !== undefined);
  const cli: Cli = {
    data: { ...defaultDatasetOptions },
    train: { ...defaultTrainOptions },
    backend: 'wasm',
    out: 'out/demo',
    mpi: launchedByMpi,
    steps: Infinity,
    lossesOnly: false,
  };
  // integer: a whole number >= min; otherwise a number >= min (> min when above is set).
  const number = (name: string, text: string | undefined, integer: boolean, min = integer ? 1 : 0, above = false): number => {
    const x = Number(text);
    if (text === undefined || text === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x)) || x < min || (above && x === min))
      throw new UsageError(`--${name} needs a ${integer ? 'whole ' : ''}number ${above ? '>' : '>='} ${min}, got ${text}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split('=', 2) as [string, string | undefined];
    if (flag === '--help' || flag === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    const name = flag.replace(/^--/, '');
    if (name === 'mpi' || name === 'losses-only') {
      if (name === 'mpi') cli.mpi = true;
      else cli.lossesOnly = true;
      continue;
    }
    if (value === undefined) value = argv[++i];
    switch (name) {
      case 'seed':
        cli.data.seed = cli.train.seed = number(name, value, true, 0);
        break;
      case 'videos':
        cli.data.videos = number(name, value, true);
        break;
      case 'test-queries':
        cli.data.testQueries = number(name, value, true);
        break;
      case 'queries-per-video':
        cli.data.trainQueriesPerVideo = number(name, value, true);
        break;
      case 'vision-share':
        cli.data.visionShare = number(name, value, false);
        if (cli.data.visionShare >= 1) throw new UsageError(`--vision-share needs a number below 1, got ${value}`);
        break;
      case 'series-size':
        cli.data.seriesSize = number(name, value, true, 2);
        break;
      case 'noise':
        cli.data.noise = number(name, value, false);
        break;
      case 'epochs':
        cli.train.epochs = number(name, value, true);
        break;
      case 'batch':
        cli.train.batch = number(name, value, true, 2);
        break;
      case 'lr':
        cli.train.learningRate = number(name, value, false, 0, true);
        break;
      case 'temperature':
        cli.train.temperature = number(name, value, false, 0, true);
        break;
      case 'k':
        cli.train.k = number(name, value, true);
        break;
      case 'margin-scale':
        cli.train.marginScale = number(name, value, false);
        break;
      case 'backend':
        if (value !== 'wasm' && value !== 'cpu') throw new UsageError(`--backend is wasm or cpu, got ${value}`);
        cli.backend = value;
        break;
      case 'out':
        if (!value) throw new UsageError('--out needs a folder');
        cli.out = value;
        break;
      case 'steps':
        cli.steps = number(name, value, true);
        break;
      case 'only':
        if (value !== 'baseline' && value !== 'mbvr') throw new UsageError(`--only is baseline or mbvr, got ${value}`);
        cli.only = value;
        break;
      default:
        throw new UsageError(`unknown option ${flag}\n${HELP}`);
    }
  }
  return cli;
}

/** A progress bar on a terminal; a line per quarter otherwise (logs, CI). */
function progressBar(label: string): (p: Progress) => void {
  const tty = process.stdout.isTTY === true;
  const start = performance.now();
  let lastQuarter = -1;
  return (p) => {
    const done = p.step / p.steps;
    const seconds = (performance.now() - start) / 1000;
    const width = 30;
    const filled = Math.round(done * width);
    const line =
      `${label.padEnd(8)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(100 * done).toFixed(0).padStart(3)}% ` +
      `step ${String(p.step).padStart(String(p.steps).length)}/${p.steps}  loss ${p.loss.toFixed(3)}  ${seconds.toFixed(1)} s`;
    if (tty) {
      process.stdout.write(`\r${line}`);
      if (p.step === p.steps) process.stdout.write('\n');
    } else {
      const quarter = Math.floor(done * 4);
      if (quarter !== lastQuarter) {
        lastQuarter = quarter;
        console.log(line);
      }
    }
  };
}

interface Summary {
  recall: { '1': number; '5': number; '10': number };
  visionRecall: { '1': number; '5': number; '10': number };
  rvtMedian: number;
  msAuc: number;
  seconds: number;
}

const round = (x: number, digits = 4) => Number(x.toFixed(digits));
const recallOf = (r: Evaluation['recall']) => ({ '1': round(r[1]), '5': round(r[5]), '10': round(r[10]) });

function table(results: Record<Mode, { evaluation: Evaluation; seconds: number }>): string {
  const rows: [string, (e: Evaluation, s: number) => string][] = [
    ['recall@1', (e) => e.recall[1].toFixed(3)],
    ['recall@5', (e) => e.recall[5].toFixed(3)],
    ['recall@10', (e) => e.recall[10].toFixed(3)],
    ['vision-dependent recall@1', (e) => e.visionRecall[1].toFixed(3)],
    ['vision-dependent recall@5', (e) => e.visionRecall[5].toFixed(3)],
    ['vision-dependent recall@10', (e) => e.visionRecall[10].toFixed(3)],
    ['vision-dependent: beats same-title', (e) => e.siblingWins.toFixed(3)],
    ['text-answerable recall@1', (e) => e.textRecall[1].toFixed(3)],
    ['R_vt median', (e) => e.rvtMedian.toFixed(3)],
    ['MS-negative AUC', (e) => e.msAuc.toFixed(3)],
    ['seconds', (_, s) => s.toFixed(1)],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = [
    `| ${'metric'.padEnd(width)} | baseline |     mbvr |`,
    `|${'-'.repeat(width + 2)}|---------:|---------:|`,
    ...rows.map(
      ([name, f]) =>
        `| ${name.padEnd(width)} | ${f(results.baseline.evaluation, results.baseline.seconds).padStart(8)} | ${f(results.mbvr.evaluation, results.mbvr.seconds).padStart(8)} |`,
    ),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  const total = performance.now();
  let comm: Communicator | undefined;
  if (cli.mpi) {
    const { init } = await import('../../src/mpi');
    comm = await init();
  }
  // Rank 0 speaks for a data-parallel job.
  const say = (...args: unknown[]) => {
    if (!comm || comm.rank === 0) console.log(...args);
  };
  tf.env().set('PROD', true); // no console banner from the cpu backend
  if (!(await tf.setBackend(cli.backend).catch(() => false))) {
    say(`tfjs: the ${cli.backend} backend did not start; using cpu (much slower)`);
    await tf.setBackend('cpu');
  }
  await tf.ready();

  const data = generateDataset(cli.data);
  if (cli.train.batch > data.train.length)
    throw new UsageError(`--batch ${cli.train.batch} is more than the ${data.train.length} training queries`);
  const metrics = chooseMetrics();
  say('MBVR demo: a modality-balanced video retriever, trained twice with tfjs and mbvr/tfjs');
  for (const line of describeDataset(data)) say(`  ${line}`);
  const t = cli.train;
  say(
    `  model: D=${defaultModelOptions.dim} two-tower + fusion H(t, v); ${t.epochs} epochs x ${Math.floor(data.train.length / t.batch)} steps of ${t.batch}, ` +
      `Adam ${t.learningRate}, tau ${t.temperature}; tfjs ${tf.getBackend()} backend; metrics from ${metrics.source === 'mbvr' ? "mbvr's evaluation API" : 'the demo fallback (addon without evaluation functions)'}`,
  );
  if (comm) say(`  data parallel: ${comm.size} MPI rank(s), each global batch of ${t.batch} split across them`);
  say(`  mbvr run: K=${t.k} MS negatives per row, margin ${t.marginScale} x visual relevance, alpha = beta = gamma = 1\n`);

  const modes = cli.only ? [cli.only] : (['baseline', 'mbvr'] as const);
  const runs = {} as Record<Mode, { seconds: number; history: { loss: number; terms: object }[]; evaluation?: Evaluation; embeddings?: Embeddings }>;
  for (const mode of modes) {
    const started = performance.now();
    const run = train(data, mode, t, !comm || comm.rank === 0 ? progressBar(mode) : undefined, comm, cli.steps);
    runs[mode] = { seconds: (performance.now() - started) / 1000, history: run.history };
    if (!cli.lossesOnly && (!comm || comm.rank === 0)) {
      const embeddings = embedAll(data, run.model, t.seed);
      runs[mode].evaluation = evaluate(data, embeddings, metrics);
      runs[mode].embeddings = embeddings;
      runs[mode].seconds = (performance.now() - started) / 1000;
    }
    run.model.dispose();
  }
  if (comm && comm.rank !== 0) return;

  fs.mkdirSync(cli.out, { recursive: true });
  const training = {
    options: { data: cli.data, train: cli.train, backend: tf.getBackend(), metrics: metrics.source, ranks: comm?.size ?? 1 },
    ...Object.fromEntries(
      modes.map((mode) => {
        const r = runs[mode];
        return [mode, { textRecall: r.evaluation?.textRecall, siblingWins: r.evaluation?.siblingWins, history: r.history }];
      }),
    ),
  };
  fs.writeFileSync(path.join(cli.out, 'training.json'), `${JSON.stringify(training)}\n`);
  if (cli.lossesOnly || modes.length < 2) {
    say(`wrote ${path.join(cli.out, 'training.json')} (losses per step); total ${((performance.now() - total) / 1000).toFixed(1)} s`);
    return;
  }
  const results = runs as Record<Mode, { evaluation: Evaluation; seconds: number; embeddings: Embeddings }>;
  console.log(`\n${table(results)}\n`);
  const b = results.baseline.evaluation;
  const m = results.mbvr.evaluation;
  const direction = [
    ['R_vt median', m.rvtMedian > b.rvtMedian],
    ['vision-dependent recall@1', m.visionRecall[1] > b.visionRecall[1]],
    ['MS-negative AUC', m.msAuc > b.msAuc],
  ] as const;
  console.log(
    direction.every(([, up]) => up)
      ? "The paper's direction: MBVR raises the R_vt median, the vision-dependent recall@1 and the MS-negative AUC."
      : `Not the paper's direction on: ${direction.filter(([, up]) => !up).map(([n]) => n).join(', ')}.`,
  );

  const summary = {} as Record<Mode, Summary>;
  for (const mode of ['baseline', 'mbvr'] as const) {
    const e = results[mode].evaluation;
    summary[mode] = {
      recall: recallOf(e.recall),
      visionRecall: recallOf(e.visionRecall),
      rvtMedian: round(e.rvtMedian),
      msAuc: round(e.msAuc),
      seconds: round(results[mode].seconds, 1),
    };
  }
  fs.writeFileSync(path.join(cli.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const dirs = (['baseline', 'mbvr'] as const).map((mode) => writeEmbeddings(path.join(cli.out, mode), results[mode].embeddings));
  console.log(`wrote ${path.join(cli.out, 'summary.json')}, training.json (losses per step) and the test embeddings (${dirs.map((d) => `${d}/*.npy`).join(', ')})`);
  console.log(await writeFigures(dirs, ['baseline', 'mbvr'], path.join(cli.out, 'report')));
  console.log(`total ${((performance.now() - total) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
