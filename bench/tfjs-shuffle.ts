// `node --import tsx bench/tfjs-shuffle.ts [--runs 7] [--sizes 128x2,256x2,128x4] [--backends cpu,wasm,webgl]`
//
// How fast each way of building the modality-shuffled inputs is (the versions are listed
// in bench/tfjs-shuffle-step.ts; "gather" is the recipe docs/trainers.md gave before
// shuffledPairs, "one-hot" the demo's): the op alone, forward and backward, and the
// milliseconds per training step of a small two-tower model. Every version is first
// checked against a plain construction (rows and gradients); one that fails, or has no
// gradient on a backend, is reported as such and not timed.
//
// cpu and wasm run here, in Node, with the mbvr/tfjs loss. webgl runs in headless
// Chromium, when there is one (MBVR_CHROMIUM, default /usr/bin/chromium: Debian's
// `apt-get install chromium`) and playwright-core resolves (not a devDependency:
// `npm install --no-save playwright-core`, or NODE_PATH=<folder>/node_modules). Without a
// GPU, Chromium's WebGL is SwiftShader's, on the CPU. The native addon does not run in a browser:
// there the loss is a tfjs stand-in of the same inputs (an InfoNCE over the fused rows and
// the MS rows), so the webgl rows compare the versions with one another, not with Node's.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { modalityShuffle } from '../src/index';
import { mbvrLoss, shuffledPairs } from '../src/tfjs';
import { printTable } from './timing';
import { measure, type MeasureOptions, type Row, type Version, versions } from './tfjs-shuffle-step';

// In Node, tfjs-layers is what registers tfjs's gradients ("gather" needs them). A plain
// require: tfjs-layers' typings do not pass tsc with skipLibCheck off.
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('@tensorflow/tfjs-layers');
tf.env().set('PROD', true);

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
export const settings = {
  runs: Number(flag('runs', '7')),
  sizes: flag('sizes', '128x2,256x2,128x4').split(',').map((s) => s.split('x').map(Number) as [number, number]),
  dim: 64,
  features: 256,
  hidden: 128,
};
const backendNames = flag('backends', 'cpu,wasm,webgl').split(',');

async function runNode(backend: string): Promise<{ op: Row[]; step: Row[] }> {
  await tf.setBackend(backend);
  await tf.ready();
  const options: MeasureOptions = {
    ...settings,
    backend,
    loss: (q, m, v, t, s) => mbvrLoss({ query: q, fused: m, visual: v, text: t, shuffled: s }, { temperature: 0.05, backend: 'cpu' }),
    shuffle: (batch, k, seed) => modalityShuffle(batch, { k, seed }),
  };
  return measure(tf, versions(tf, shuffledPairs as Version), options);
}

/** The little of playwright-core used here (typed here: it is an optional extra). */
interface Playwright {
  chromium: {
    launch(o: { executablePath: string; args: string[] }): Promise<{
      newPage(): Promise<{ goto(url: string): Promise<unknown>; evaluate<A, R>(f: (arg: A) => R | Promise<R>, arg: A): Promise<R> }>;
      close(): Promise<void>;
    }>;
  };
}

/** The webgl tables from headless Chromium, or why there are none. */
async function runWebgl(): Promise<{ op: Row[]; step: Row[]; device: string } | string> {
  const chromium = process.env.MBVR_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(chromium)) return `no Chromium at ${chromium} (set MBVR_CHROMIUM)`;
  let playwright: Playwright;
  let esbuild: typeof import('esbuild');
  try {
    // Optional, not a devDependency: `npm install --no-save playwright-core`, or NODE_PATH.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    playwright = require('playwright-core') as Playwright;
    esbuild = await import('esbuild'); // (tsx's)
  } catch (error) {
    return `needs playwright-core and esbuild (${(error as Error).message.split('\n')[0]})`;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-webgl-'));
  try {
    await esbuild.build({
      entryPoints: [path.join(__dirname, 'tfjs-shuffle-browser.ts')],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      outfile: path.join(work, 'bench.js'),
      logLevel: 'error',
    });
    fs.writeFileSync(path.join(work, 'index.html'), '<!doctype html><script src="bench.js"></script>');
    const browser = await playwright.chromium.launch({
      executablePath: chromium,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-unsafe-swiftshader'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`file://${path.join(work, 'index.html')}`);
      return await page.evaluate(
        (s: typeof settings) => (globalThis as unknown as { runBench: (o: typeof s) => Promise<{ op: Row[]; step: Row[]; device: string }> }).runBench(s),
        settings,
      );
    } finally {
      await browser.close();
    }
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  const op: Row[] = [];
  const step: Row[] = [];
  for (const backend of backendNames.filter((b) => b !== 'webgl')) {
    const out = await runNode(backend);
    op.push(...out.op);
    step.push(...out.step);
  }
  let webgl = '';
  if (backendNames.includes('webgl')) {
    const out = await runWebgl();
    if (typeof out === 'string') webgl = `webgl: not measured: ${out}`;
    else {
      op.push(...out.op);
      step.push(...out.step);
      webgl = `webgl: headless Chromium, ${out.device}; its loss is a tfjs stand-in (no native addon in a browser)`;
    }
  }
  const { runs, dim, features, hidden } = settings;
  console.log(
    `Medians of ${runs} runs after 2 warm-up runs, versions interleaved; D=${dim}; ${os.cpus().length} cores (${os.cpus()[0]?.model}); ` +
      `node ${process.version}; ${new Date().toISOString().slice(0, 10)}. speed-up: against "gather" where it runs, else against "one-hot".`,
  );
  if (webgl) console.log(webgl);
  console.log('\nThe op alone: rows and their gradient (forward + backward of sum(W * rows)), ms');
  printTable(['backend', 'B', 'K', 'version', 'ms', 'speed-up'], op);
  console.log(`\nA training step of a two-tower model (linear towers from ${features} features, fusion MLP with ${hidden} hidden, Adam), ms`);
  printTable(['backend', 'B', 'K', 'version', 'ms/step', 'speed-up'], step);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
