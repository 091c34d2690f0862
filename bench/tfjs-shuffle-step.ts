// The versions of "build the K modality-shuffled inputs" that bench/tfjs-shuffle.ts times,
// and the training step it times them in. Environment-free (it is also bundled for the
// browser, for the webgl backend): tfjs comes in as an argument.
//
// Every version returns, for pi (B x K, row-major) from modalityShuffle, the rows
//   text[i * K + k] = t_i,   visual[i * K + k] = v_pi_k(i)          (B*K x D each)
// differentiable into t and v. Versions:
//   1 gather     tf.gather with tfjs's registered gradient (unsortedSegmentSum): the
//                recipe docs/trainers.md gave. No gradient on wasm (no kernel).
//   2 one-hot    constant one-hot matrices P (B*K x B): P t, P v; backward P^T dy with an
//                explicit transpose (what the demo used before shuffledPairs). O(B^2 K D).
//   3 inverse    a custom op: forward tf.gather; backward by gathering dy through the
//                inverse of the index (each video's rows, padded to the most frequent
//                video with a zero row) and summing. O(B K D), forward kernels only.
//   4 js         a custom op on the CPU: rows copied in JavaScript (dataSync), the
//                backward scatter-adds in JavaScript. O(B K D); reads the data back.
//   5 shuffledPairs  from mbvr/tfjs (what the package ships: 4 on cpu and wasm, 3 elsewhere).
import type * as TF from '@tensorflow/tfjs-core';

export type Tf = typeof TF;
export type Pairs = { text: TF.Tensor; visual: TF.Tensor };
export type Version = (text: TF.Tensor2D, visual: TF.Tensor2D, pi: Int32Array) => Pairs;

function ownRows(batch: number, k: number): Int32Array {
  return Int32Array.from({ length: batch * k }, (_, r) => Math.floor(r / k));
}

export function versions(tf: Tf, shipped?: Version): Record<string, Version> {
  const gather: Version = (text, visual, pi) => {
    const k = pi.length / text.shape[0];
    return { text: tf.gather(text, ownRows(text.shape[0], k)), visual: tf.gather(visual, pi) };
  };

  const oneHotTimes = (index: Int32Array, rows: number, x: TF.Tensor2D): TF.Tensor2D => {
    const op = tf.customGrad((...args: Array<TF.Tensor | TF.GradSaveFunc>) => {
      const picks = new Float32Array(index.length * rows);
      for (let r = 0; r < index.length; r++) picks[r * rows + index[r]] = 1;
      const p = tf.tensor2d(picks, [index.length, rows]);
      (args[1] as TF.GradSaveFunc)([p]);
      return {
        value: tf.matMul(p, args[0] as TF.Tensor2D),
        gradFunc: (dy: TF.Tensor, saved: TF.Tensor[]) => tf.matMul(tf.transpose(saved[0]), dy as TF.Tensor2D),
      };
    });
    return op(x) as TF.Tensor2D;
  };
  const oneHot: Version = (text, visual, pi) => {
    const batch = text.shape[0];
    return { text: oneHotTimes(ownRows(batch, pi.length / batch), batch, text), visual: oneHotTimes(pi, batch, visual) };
  };

  const inverseGather = (x: TF.Tensor2D, index: Int32Array): TF.Tensor2D => {
    const [rows, dim] = x.shape;
    const count = new Int32Array(rows);
    for (const j of index) count[j]++;
    const width = Math.max(1, ...count);
    const inverse = new Int32Array(rows * width).fill(index.length); // index.length: the zero row
    count.fill(0);
    index.forEach((j, r) => (inverse[j * width + count[j]++] = r));
    const op = tf.customGrad((...args: Array<TF.Tensor | TF.GradSaveFunc>) => ({
      value: tf.gather(args[0] as TF.Tensor2D, index),
      gradFunc: (dy: TF.Tensor) => {
        const padded = tf.concat([dy as TF.Tensor2D, tf.zeros([1, dim])]);
        return tf.sum(tf.reshape(tf.gather(padded, inverse), [rows, width, dim]), 1);
      },
    }));
    return op(x) as TF.Tensor2D;
  };
  const inverse: Version = (text, visual, pi) => {
    const batch = text.shape[0];
    return { text: inverseGather(text, ownRows(batch, pi.length / batch)), visual: inverseGather(visual, pi) };
  };

  const jsGather = (x: TF.Tensor2D, index: Int32Array): TF.Tensor2D => {
    const [rows, dim] = x.shape;
    const op = tf.customGrad((...args: Array<TF.Tensor | TF.GradSaveFunc>) => {
      const src = (args[0] as TF.Tensor).dataSync() as Float32Array;
      const out = new Float32Array(index.length * dim);
      for (let r = 0; r < index.length; r++) out.set(src.subarray(index[r] * dim, (index[r] + 1) * dim), r * dim);
      return {
        value: tf.tensor2d(out, [index.length, dim]),
        gradFunc: (dy: TF.Tensor) => {
          const g = dy.dataSync() as Float32Array;
          const dx = new Float32Array(rows * dim);
          for (let r = 0; r < index.length; r++) {
            const to = index[r] * dim;
            const from = r * dim;
            for (let c = 0; c < dim; c++) dx[to + c] += g[from + c];
          }
          return tf.tensor2d(dx, [rows, dim]);
        },
      };
    });
    return op(x) as TF.Tensor2D;
  };
  const js: Version = (text, visual, pi) => {
    const batch = text.shape[0];
    return { text: jsGather(text, ownRows(batch, pi.length / batch)), visual: jsGather(visual, pi) };
  };

  const all: Record<string, Version> = { gather, 'one-hot': oneHot, inverse, js };
  if (shipped) all.shuffledPairs = shipped;
  return all;
}

/** A small two-tower retriever: linear towers, a residual MLP fusion H(t, v). */
export interface StepModel {
  variables: TF.Variable[];
  /** one optimizer step; returns the loss */
  step(version: Version, pi: Int32Array): number;
  dispose(): void;
}

export interface StepSizes {
  batch: number;
  dim: number;
  k: number;
  /** input feature width of each tower */
  features: number;
  hidden: number;
}

/** loss(query, fused, visual, text, shuffled) -> scalar: mbvr/tfjs in Node, a tfjs stand-in in the browser. */
export type LossFn = (q: TF.Tensor2D, m: TF.Tensor2D, v: TF.Tensor2D, t: TF.Tensor2D, s: TF.Tensor2D) => TF.Scalar;

export function stepModel(tf: Tf, sizes: StepSizes, loss: LossFn, seed = 1): StepModel {
  const { batch, dim, features, hidden } = sizes;
  let state = seed >>> 0;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const matrix = (rows: number, cols: number) =>
    tf.variable(tf.tensor2d(Float32Array.from({ length: rows * cols }, () => (random() * 2) / Math.sqrt(rows)), [rows, cols]));
  const Wq = matrix(features, dim);
  const Wt = matrix(features, dim);
  const Wv = matrix(features, dim);
  const Wh1 = matrix(2 * dim, hidden);
  const Wh2 = matrix(hidden, dim);
  const variables = [Wq, Wt, Wv, Wh1, Wh2];
  const input = () => tf.tensor2d(Float32Array.from({ length: batch * features }, random), [batch, features]);
  const [xq, xt, xv] = [input(), input(), input()];
  const fuse = (t: TF.Tensor2D, v: TF.Tensor2D) => tf.add(tf.add(t, v), tf.matMul(tf.relu(tf.matMul(tf.concat([t, v], 1), Wh1)), Wh2)) as TF.Tensor2D;
  const optimizer = tf.train.adam(1e-3);
  return {
    variables,
    step(version, pi) {
      const value = optimizer.minimize(() => {
        const q = tf.matMul(xq, Wq) as TF.Tensor2D;
        const t = tf.matMul(xt, Wt) as TF.Tensor2D;
        const v = tf.matMul(xv, Wv) as TF.Tensor2D;
        const pairs = version(t, v, pi);
        return loss(q, fuse(t, v), v, t, fuse(pairs.text as TF.Tensor2D, pairs.visual as TF.Tensor2D));
      }, true)!;
      const out = value.dataSync()[0];
      value.dispose();
      return out;
    },
    dispose() {
      tf.dispose([...variables, xq, xt, xv]);
      optimizer.dispose();
    },
  };
}

/** Plain construction in float64: the rows, and the gradient of sum(Wt * text + Wv * visual). */
function expected(t: number[][], v: number[][], pi: Int32Array, wt: number[][], wv: number[][]) {
  const k = pi.length / t.length;
  const rows = [Array.from(pi, (_, r) => t[Math.floor(r / k)]), Array.from(pi, (j) => v[j])];
  const dt = t.map((row) => row.map(() => 0));
  const dv = v.map((row) => row.map(() => 0));
  pi.forEach((j, r) => {
    wt[r].forEach((w, c) => (dt[Math.floor(r / k)][c] += w));
    wv[r].forEach((w, c) => (dv[j][c] += w));
  });
  return { rows, grads: [dt, dv] };
}

function maxDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) => row.forEach((x, c) => (m = Math.max(m, Math.abs(x - b[i][c])))));
  return m;
}

/** null when the version builds the right rows and gradients; else what went wrong. */
export function check(tf: Tf, version: Version, batch: number, pi: Int32Array): string | null {
  let state = 7;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const mat = (rows: number) => Array.from({ length: rows }, () => Array.from({ length: 8 }, random));
  const [t, v, wt, wv] = [mat(batch), mat(batch), mat(pi.length), mat(pi.length)];
  const want = expected(t, v, pi, wt, wv);
  try {
    const got = tf.tidy(() => {
      const [tt, vv, wtt, wvv] = [t, v, wt, wv].map((m) => tf.tensor2d(m));
      const pairs = version(tt, vv, pi);
      const grads = tf.grads((a: TF.Tensor, b: TF.Tensor) => {
        const p = version(a as TF.Tensor2D, b as TF.Tensor2D, pi);
        return tf.add(tf.sum(tf.mul(wtt, p.text)), tf.sum(tf.mul(wvv, p.visual))) as TF.Scalar;
      })([tt, vv]);
      return { rows: [pairs.text.arraySync() as number[][], pairs.visual.arraySync() as number[][]], grads: grads.map((g) => g.arraySync() as number[][]) };
    });
    const err = Math.max(...[0, 1].map((i) => Math.max(maxDiff(got.rows[i], want.rows[i]), maxDiff(got.grads[i], want.grads[i]))));
    return err < 1e-5 ? null : `wrong (max error ${err.toExponential(1)})`;
  } catch (error) {
    return `fails: ${(error as Error).message.split('\n')[0].slice(0, 60)}`;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Median ms of `work(name, run)` per version, the versions interleaved run by run (a slow
 * spell of a shared machine hits them all alike), after two warm-up rounds.
 */
function interleaved(names: string[], runs: number, work: (name: string, run: number) => void): Record<string, number> {
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let run = 0; run < runs + 2; run++)
    for (const name of names) {
      const t0 = performance.now();
      work(name, run);
      if (run >= 2) times[name].push(performance.now() - t0);
    }
  return Object.fromEntries(names.map((n) => [n, median(times[n])]));
}

export type Row = (string | number)[];

export interface MeasureOptions {
  backend: string;
  runs: number;
  sizes: [number, number][];
  dim: number;
  features: number;
  hidden: number;
  loss: LossFn;
  /** pi for a batch: modalityShuffle(batch, { k, seed }) */
  shuffle: (batch: number, k: number, seed: number) => Int32Array;
}

/**
 * Two tables of rows [backend, B, K, version, ms, speed-up]: the op alone (forward and
 * backward of sum(W * rows)), and a training step. The speed-up is against "gather" where
 * it runs, else against "one-hot".
 */
export function measure(tf: Tf, all: Record<string, Version>, o: MeasureOptions): { op: Row[]; step: Row[] } {
  const op: Row[] = [];
  const step: Row[] = [];
  for (const [batch, k] of o.sizes) {
    const pis = Array.from({ length: o.runs + 2 }, (_, i) => o.shuffle(batch, k, i));
    const ok: string[] = [];
    for (const [name, version] of Object.entries(all)) {
      const problem = check(tf, version, Math.min(batch, 12), o.shuffle(Math.min(batch, 12), k, 99));
      if (problem) [op, step].forEach((table) => table.push([o.backend, batch, k, name, problem, '']));
      else ok.push(name);
    }
    const t = tf.randomNormal([batch, o.dim]) as TF.Tensor2D;
    const v = tf.randomNormal([batch, o.dim]) as TF.Tensor2D;
    const w = tf.randomNormal([batch * k, o.dim]) as TF.Tensor2D;
    const opMs = interleaved(ok, o.runs, (name, run) =>
      tf.tidy(() => {
        const grads = tf.grads((a: TF.Tensor, b: TF.Tensor) => {
          const p = all[name](a as TF.Tensor2D, b as TF.Tensor2D, pis[run]);
          return tf.add(tf.sum(tf.mul(w, p.text)), tf.sum(tf.mul(w, p.visual))) as TF.Scalar;
        })([t, v]);
        grads.forEach((g) => g.dataSync());
      }),
    );
    tf.dispose([t, v, w]);
    const models = Object.fromEntries(ok.map((n) => [n, stepModel(tf, { batch, dim: o.dim, k, features: o.features, hidden: o.hidden }, o.loss)]));
    const stepMs = interleaved(ok, o.runs, (name, run) => models[name].step(all[name], pis[run]));
    Object.values(models).forEach((m) => m.dispose());
    for (const [table, ms] of [[op, opMs], [step, stepMs]] as const) {
      const ref = ms.gather ?? ms['one-hot'];
      for (const name of ok) table.push([o.backend, batch, k, name, ms[name].toFixed(2), ref ? (ref / ms[name]).toFixed(2) : '']);
    }
  }
  return { op, step };
}
