// A complete, small training run with mbvr/tfjs: a two-tower video retriever (a query
// tower; a video tower of text and visual encoders joined by a fusion H) trained with
// the MBVR loss on a synthetic search log. It uses every piece a real trainer needs:
//   - modality-shuffled (MS) negatives H(t_i, v_pi_k(i)) from modalityShuffle and
//     shuffledPairs, K of them per query;
//   - a per-row (dynamic) margin, larger for queries that need the visuals;
//   - labels: several queries of one batch may ask for the same video (duplicates);
//   - a learned temperature, as OpenCLIP learns it: a logit scale s = ln(1 / tau).
// It prints the loss every 25 steps, then the loss's fall and the held-out recall@1.
//
//   npm install mbvr @tensorflow/tfjs          (add @tensorflow/tfjs-backend-wasm for --backend wasm)
//   node node_modules/mbvr/examples/train/train.mjs [--steps 300] [--backend cpu|wasm] [--seed 1]
//
// Plain JavaScript (ES module), importing `mbvr` and `mbvr/tfjs` by package name.
import * as tf from '@tensorflow/tfjs';
import { modalityShuffle, retrievalMetrics } from 'mbvr';
import { mbvrLoss, shuffledPairs } from 'mbvr/tfjs';

// ---------------------------------------------------------------- command line
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const steps = Number(flag('steps', '300'));
const backend = flag('backend', 'cpu');
const seed = Number(flag('seed', '1'));
if (!Number.isInteger(steps) || steps < 2) throw new RangeError(`--steps needs a whole number >= 2, got ${flag('steps')}`);

tf.env().set('PROD', true); // (no console banner about tfjs-node)
if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
if (!(await tf.setBackend(backend))) throw new Error(`the tfjs ${backend} backend did not start`);

const B = 64; // batch
const K = 2; // MS negatives per query
const D = 32; // embedding size
const features = 24; // width of each raw feature vector
const videos = 400;
const queriesPerVideo = 4;

// ---------------------------------------------------------------- data
// Video j has a latent content c_j (16 numbers): its title shows the first 8, its frames
// all 16 (noisily). A query describes either what the title says (text queries) or
// what only the frames show (vision queries, 30%): the latter need the visuals.
let state = seed >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
function gaussian() {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
const matrix = (rows, cols) => Array.from({ length: rows }, () => Array.from({ length: cols }, gaussian));
const project = (m, x, noise) => m.map((row) => row.reduce((s, w, i) => s + w * x[i], 0) + noise * gaussian());

const toText = matrix(features, 8);
const toFrames = matrix(features, 16);
const toQuery = matrix(features, 8);
const content = Array.from({ length: videos }, () => Array.from({ length: 16 }, gaussian));
const titleFeatures = content.map((c) => project(toText, c.slice(0, 8), 0.1));
const frameFeatures = content.map((c) => project(toFrames, c, 0.3));
const queries = [];
for (let j = 0; j < videos; j++)
  for (let q = 0; q < queriesPerVideo; q++) {
    const vision = random() < 0.3;
    const about = vision ? content[j].slice(8) : content[j].slice(0, 8);
    queries.push({ video: j, vision, features: project(toQuery, about, 0.3) });
  }
// Hold out one query per video for evaluation.
const test = queries.filter((_, i) => i % queriesPerVideo === 0);
const train = queries.filter((_, i) => i % queriesPerVideo !== 0);

// ---------------------------------------------------------------- model
const glorot = (rows, cols) => tf.variable(tf.randomUniform([rows, cols], -Math.sqrt(6 / (rows + cols)), Math.sqrt(6 / (rows + cols)), 'float32', seed));
const Wq1 = glorot(features, 64);
const Wq2 = glorot(64, D);
const Wt = glorot(features, D);
const Wv = glorot(features, D);
const Wh1 = glorot(2 * D, 64);
const Wh2 = glorot(64, D);
const encodeQuery = (x) => tf.matMul(tf.relu(tf.matMul(x, Wq1)), Wq2);
const encodeText = (x) => tf.matMul(x, Wt);
const encodeVisual = (x) => tf.matMul(x, Wv);
// H(t, v): residual, so the fused embedding can lean on either input.
const fuse = (t, v) => tf.add(tf.add(t, v), tf.matMul(tf.relu(tf.matMul(tf.concat([t, v], 1), Wh1)), Wh2));

// The learned temperature: s = ln(1 / tau), OpenCLIP's starting value tau = 0.07. mbvrLoss
// uses tau = exp(-clamp(s, 0, ln 100)), so tau stays in [0.01, 1] whatever Adam does.
const logitScale = tf.variable(tf.scalar(Math.log(1 / 0.07)));

// ---------------------------------------------------------------- training
const optimizer = tf.train.adam(0.01);
const history = [];
const order = train.map((_, i) => i);
for (let step = 0; step < steps; step++) {
  // Batches drawn with replacement from the training queries: a batch can hold two
  // queries of one video. `labels` tells the loss so (a duplicate is no negative), and
  // modalityShuffle avoids pairing a text with its own video's visuals.
  const rows = Array.from({ length: B }, () => train[order[Math.floor(random() * order.length)]]);
  const labels = Int32Array.from(rows, (q) => q.video);
  const margin = Float32Array.from(rows, (q) => (q.vision ? 0.2 : 0.05)); // delta_i: more for vision queries
  const pi = modalityShuffle(B, { k: K, seed: seed * 100003 + step, labels });
  const [xq, xt, xv] = [rows.map((q) => q.features), rows.map((q) => titleFeatures[q.video]), rows.map((q) => frameFeatures[q.video])].map((x) => tf.tensor2d(x));
  let terms;
  const loss = optimizer.minimize(() => {
    const query = encodeQuery(xq);
    const text = encodeText(xt);
    const visual = encodeVisual(xv);
    const fused = fuse(text, visual);
    // Row i * K + k: video i's text with the visuals of video pi_k(i), fused by H.
    const pairs = shuffledPairs(text, visual, pi);
    const shuffled = fuse(pairs.text, pairs.visual);
    return mbvrLoss({ query, fused, visual, text, shuffled }, { logitScale, margin, labels, onResult: (r) => (terms = r.terms) });
  }, true);
  history.push(loss.dataSync()[0]);
  tf.dispose([loss, xq, xt, xv]);
  if ((step + 1) % 25 === 0 || step === steps - 1) {
    const recent = history.slice(-25);
    const tau = Math.exp(-Math.min(Math.max(logitScale.dataSync()[0], 0), Math.log(100)));
    console.log(
      `step ${String(step + 1).padStart(4)}  loss ${(recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(4)}  ` +
        `tau ${tau.toFixed(4)}  (last step: qm ${terms.qm.toFixed(3)} ms ${terms.ms.toFixed(3)})`,
    );
  }
}

// ---------------------------------------------------------------- result
const window = Math.max(1, Math.min(25, Math.floor(steps / 4)));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const first = mean(history.slice(0, window));
const last = mean(history.slice(-window));
console.log(`loss fell from ${first.toFixed(4)} to ${last.toFixed(4)} (mean of the first and the last ${window} steps)`);

const gallery = tf.tidy(() => fuse(encodeText(tf.tensor2d(titleFeatures)), encodeVisual(tf.tensor2d(frameFeatures))).dataSync());
const testQueries = tf.tidy(() => encodeQuery(tf.tensor2d(test.map((q) => q.features))).dataSync());
const { recall } = retrievalMetrics(testQueries, gallery, { rows: test.length, cols: videos, dim: D, targets: Int32Array.from(test, (q) => q.video), ks: [1, 10] });
console.log(`held-out recall@1 ${recall[1].toFixed(3)}, recall@10 ${recall[10].toFixed(3)} (${test.length} queries, ${videos} videos; chance ${(1 / videos).toFixed(4)})`);
optimizer.dispose();
