// mbvr/tfjs: the TensorFlow.js op's value and gradients are the native ones (for every
// input, on tfjs's cpu and wasm backends), tfjs optimizers train through it, a learned
// logit scale gets the chain rule's gradient, shuffledPairs builds the MS inputs and
// their gradients as tf.gather does, bad input is named, and the subpath loads (CommonJS
// and ESM) while `mbvr` alone never loads tfjs. Child processes check the tfjs setups the
// docs name, the load without tfjs installed, and the shipped example.
// (tfjs-core plus backends rather than the @tensorflow/tfjs bundle: the bundle's layers
// typings do not pass `tsc` with skipLibCheck off; the wasm typings need emscripten's.)
/// <reference types="emscripten" />
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { mbvrLossSync, modalityShuffle } from '../src/index';
import { referenceLoss } from '../src/reference';
import { LOGIT_SCALE_MAX, LOGIT_SCALE_MIN, mbvrLoss, shuffledPairs } from '../src/tfjs';
import { pickRows, type PickStrategy } from '../src/tfjs-pairs';
import type { MbvrOptions } from '../src/types';
import { randInt, randomCase, randomOptions, randomRows, relativeError, rng, sameBits, suiteSeed, type Case } from './helpers';

// In Node, @tensorflow/tfjs-layers is what registers tfjs's gradients (docs/trainers.md);
// a plain require, as its typings do not pass tsc with skipLibCheck off.
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('@tensorflow/tfjs-layers');
// The cpu backend greets Node users with a console banner; PROD only silences it.
tf.env().set('PROD', true);

const root = path.join(__dirname, '..');
const names = ['query', 'fused', 'visual', 'text', 'shuffled'] as const;

for (const backendName of ['cpu', 'wasm']) {
  describe(`mbvr/tfjs on the tfjs ${backendName} backend`, () => {
    it('selects the backend', async () => {
      assert.equal(await tf.setBackend(backendName), true);
      await tf.ready();
      assert.equal(tf.getBackend(), backendName);
    });

    it('returns the native loss and, for every input, the native gradient', () => {
      const random = rng(suiteSeed + 1);
      for (let trial = 0; trial < 12; trial++) {
        const batch = 1 + Math.floor(random() * 40) + (trial === 0 ? 0 : 1);
        const dim = 1 + Math.floor(random() * 48);
        const k = 1 + Math.floor(random() * 3);
        const c = randomCase(random, batch, dim, k);
        const options = randomOptions(random, batch);
        options.temperature = Math.fround(options.temperature!); // what a float32 tensor holds
        // Every input given, whatever the weights: a weight of 0 gives a zero gradient.
        const native = mbvrLossSync(c, { ...options, backend: 'cpu' });
        const xs = names.map((n) => tf.tensor(c[n], n === 'shuffled' ? [batch, k, dim] : [batch, dim]));
        const tau = tf.scalar(options.temperature!);
        const f = (q: tf.Tensor, m: tf.Tensor, v: tf.Tensor, t: tf.Tensor, s: tf.Tensor, temperature: tf.Tensor) =>
          mbvrLoss({ query: q, fused: m, visual: v, text: t, shuffled: s }, { ...options, temperature, backend: 'cpu' });
        const { value, grads } = tf.valueAndGrads(f as (...args: tf.Tensor[]) => tf.Scalar)([...xs, tau]);
        const what = `trial ${trial}: B=${batch} D=${dim} K=${k} ${JSON.stringify({ ...options, margin: typeof options.margin, labels: !!options.labels })}`;
        assert.equal(value.dataSync()[0], Math.fround(native.loss), what);
        names.forEach((n, i) => {
          assert.deepEqual(grads[i].shape, xs[i].shape, `${what}: d${n} shape`);
          assert.ok(sameBits(grads[i].dataSync() as Float32Array, native.grads![n]!), `${what}: d${n} differs from mbvrLossSync`);
        });
        assert.equal(grads[5].dataSync()[0], Math.fround(native.grads!.temperature), `${what}: dtau`);
        tf.dispose([...xs, tau, value, ...grads]);
      }
    });

    it('multiplies its gradients by the upstream gradient, and takes shuffled as [B * K, D]', () => {
      const random = rng(suiteSeed + 2);
      const [batch, dim, k] = [9, 7, 2];
      const c = randomCase(random, batch, dim, k);
      const options: MbvrOptions = { temperature: 0.1, margin: 0.05 };
      const native = mbvrLossSync(c, options);
      const xs = names.map((n) => tf.tensor(c[n], n === 'shuffled' ? [batch * k, dim] : [batch, dim]));
      const grads = tf.grads((q, m, v, t, s) =>
        tf.mul(-2.5, mbvrLoss({ query: q, fused: m, visual: v, text: t, shuffled: s }, options)),
      )(xs);
      names.forEach((n, i) => {
        const expected = native.grads![n]!.map((g) => -2.5 * g);
        assert.ok(relativeError(grads[i].dataSync(), expected) < 1e-6, `d${n}`);
      });
      tf.dispose([...xs, ...grads]);
    });

    it('needs only query and fused when alpha = beta = gamma = 0, and leaks no tensors', () => {
      const random = rng(suiteSeed + 3);
      const c = randomCase(random, 16, 8, 1);
      const options: MbvrOptions = { alpha: 0, beta: 0, gamma: 0, labels: Int32Array.from({ length: 16 }, (_, i) => i % 12) };
      const native = mbvrLossSync({ batch: 16, dim: 8, query: c.query, fused: c.fused }, options);
      const q = tf.tensor2d(c.query, [16, 8]);
      const m = tf.tensor2d(c.fused, [16, 8]);
      const before = tf.memory().numTensors;
      const [dq, dm] = tf.tidy(() => tf.grads((a, b) => mbvrLoss({ query: a, fused: b }, options))([q, m]));
      assert.equal(tf.memory().numTensors, before + 2, 'only the two returned gradients stay alive');
      assert.ok(sameBits(dq.dataSync() as Float32Array, native.grads!.query));
      assert.ok(sameBits(dm.dataSync() as Float32Array, native.grads!.fused));
      tf.dispose([q, m, dq, dm]);
    });

    it('trains: a few steps of optimizer.minimize lower the loss (embeddings and temperature)', () => {
      const random = rng(suiteSeed + 4);
      const [batch, dim, k] = [32, 16, 2];
      const c = randomCase(random, batch, dim, k);
      const vars = {
        query: tf.variable(tf.tensor2d(c.query, [batch, dim])),
        fused: tf.variable(tf.tensor2d(c.fused, [batch, dim])),
        visual: tf.variable(tf.tensor2d(c.visual, [batch, dim])),
        text: tf.variable(tf.tensor2d(c.text, [batch, dim])),
        shuffled: tf.variable(tf.tensor3d(c.shuffled, [batch, k, dim])),
      };
      const temperature = tf.variable(tf.scalar(0.2));
      const optimizer = tf.train.adam(0.05);
      const losses: number[] = [];
      for (let step = 0; step < 8; step++) {
        const loss = optimizer.minimize(() => mbvrLoss(vars, { temperature, margin: 0.1 }), true)!;
        losses.push(loss.dataSync()[0]);
        loss.dispose();
      }
      const after = mbvrLossSync(
        { batch, dim, ...Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, v.dataSync() as Float32Array])) } as never,
        { temperature: temperature.dataSync()[0], margin: 0.1 },
      ).loss;
      assert.ok(after < losses[0] * 0.8, `loss ${losses[0]} -> ${after} (steps: ${losses.map((l) => l.toFixed(3)).join(' ')})`);
      for (let i = 1; i < losses.length; i++) assert.ok(losses[i] < losses[i - 1], `step ${i} raised the loss: ${losses.join(' ')}`);
      assert.notEqual(temperature.dataSync()[0], 0.2, 'the temperature variable was updated');
      tf.dispose([...Object.values(vars), temperature]);
      optimizer.dispose();
    });

    // shuffledPairs against the plain construction: tf.gather, with tfjs's own gradient
    // for it, on the cpu backend. The loss sum(Wt * text) + sum(Wv * visual) makes the
    // upstream gradients arbitrary rows (Wt, Wv).
    async function gatherReference(t: tf.Tensor, v: tf.Tensor, index: { text: Int32Array; visual: Int32Array }, wt: tf.Tensor, wv: tf.Tensor) {
      await tf.setBackend('cpu');
      const out = tf.tidy(() => {
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          tf.add(tf.sum(tf.mul(wt, tf.gather(a, index.text))), tf.sum(tf.mul(wv, tf.gather(b, index.visual)))) as tf.Scalar;
        const [dt, dv] = tf.grads(f)([t, v]);
        return [tf.gather(t, index.text), tf.gather(v, index.visual), dt, dv].map((x) => x.dataSync() as Float32Array);
      });
      await tf.setBackend(backendName);
      return out;
    }

    function ours(build: (a: tf.Tensor, b: tf.Tensor) => { text: tf.Tensor; visual: tf.Tensor }, t: tf.Tensor, v: tf.Tensor, wt: tf.Tensor, wv: tf.Tensor) {
      return tf.tidy(() => {
        const rows = build(t, v);
        const [dt, dv] = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
          const p = build(a, b);
          return tf.add(tf.sum(tf.mul(wt, p.text)), tf.sum(tf.mul(wv, p.visual))) as tf.Scalar;
        })([t, v]);
        return { shapes: [rows.text.shape, rows.visual.shape], values: [rows.text, rows.visual, dt, dv].map((x) => x.dataSync() as Float32Array) };
      });
    }

    function compare(got: Float32Array[], want: Float32Array[], what: string) {
      assert.ok(sameBits(got[0], want[0]), `${what}: text rows`);
      assert.ok(sameBits(got[1], want[1]), `${what}: visual rows`);
      // Gradient rows are sums of several dy rows: the order of the additions may differ.
      assert.ok(relativeError(got[2], want[2]) < 1e-6, `${what}: d text ${relativeError(got[2], want[2])}`);
      assert.ok(relativeError(got[3], want[3]) < 1e-6, `${what}: d visual ${relativeError(got[3], want[3])}`);
    }

    it('shuffledPairs: the rows and gradients of tf.gather, for K = 1, 2, 3 and more', async () => {
      await tf.setBackend(backendName);
      const random = rng(suiteSeed + 5);
      for (const [trial, k] of [1, 2, 3, 1, 3, randInt(random, 4, 7)].entries()) {
        const batch = randInt(random, k + 1, 40); // K < B: K distinct negatives, none the row itself
        const [dt, dv] = [randInt(random, 1, 24), randInt(random, 1, 24)]; // H may take text and visuals of different widths
        const labels = Int32Array.from({ length: batch }, () => randInt(random, 0, Math.max(1, batch >> 1)));
        const pi = modalityShuffle(batch, { k, seed: trial, labels: trial % 2 ? labels : undefined });
        const own = Int32Array.from({ length: batch * k }, (_, r) => Math.floor(r / k));
        const t = tf.tensor2d(randomRows(random, batch, dt), [batch, dt]);
        const v = tf.tensor2d(randomRows(random, batch, dv), [batch, dv]);
        const wt = tf.tensor2d(randomRows(random, batch * k, dt), [batch * k, dt]);
        const wv = tf.tensor2d(randomRows(random, batch * k, dv), [batch * k, dv]);
        const want = await gatherReference(t, v, { text: own, visual: pi }, wt, wv);
        const got = ours((a, b) => shuffledPairs(a, b, pi), t, v, wt, wv);
        const what = `B=${batch} K=${k} widths ${dt}, ${dv}`;
        assert.deepEqual(got.shapes, [[batch * k, dt], [batch * k, dv]], what);
        compare(got.values, want, what);
        tf.dispose([t, v, wt, wv]);
      }
    });

    it('pickRows, both ways (JavaScript copies; gather and inverse gather): any index, any rank', async () => {
      await tf.setBackend(backendName);
      const random = rng(suiteSeed + 6);
      for (let trial = 0; trial < 6; trial++) {
        // Rows read 0, 1 or many times (the inverse-gather's padded case), rank 2 or 3.
        const rows = randInt(random, 1, 30);
        const n = randInt(random, 1, 60);
        const inner = trial % 2 ? [randInt(random, 1, 5), randInt(random, 1, 6)] : [randInt(random, 1, 20)];
        const width = inner.reduce((a, b) => a * b, 1);
        const index = Int32Array.from({ length: n }, () => randInt(random, 0, rows - 1));
        const x = tf.tensor(randomRows(random, rows, width), [rows, ...inner]);
        const w = tf.tensor(randomRows(random, n, width), [n, ...inner]);
        const want = await gatherReference(x, x, { text: index, visual: index }, w, w);
        for (const strategy of ['copy', 'gather'] as PickStrategy[]) {
          const got = ours((a, b) => ({ text: pickRows(a, index, strategy), visual: pickRows(b, index, strategy) }), x, x, w, w);
          assert.deepEqual(got.shapes[0], [n, ...inner]);
          compare(got.values, want, `${strategy}: ${rows} rows [${inner}], ${n} picks`);
        }
        tf.dispose([x, w]);
      }
    });

    it('shuffledPairs leaks no tensors, and its backward uses pi as it was at the call', async () => {
      await tf.setBackend(backendName);
      const random = rng(suiteSeed + 7);
      const [batch, dim, k] = [10, 6, 2];
      const pi = modalityShuffle(batch, { k, seed: 1 });
      const t = tf.tensor2d(randomRows(random, batch, dim), [batch, dim]);
      const v = tf.tensor2d(randomRows(random, batch, dim), [batch, dim]);
      const before = tf.memory().numTensors;
      const [dt, dv] = tf.tidy(() =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => {
          const p = shuffledPairs(a, b, pi);
          const loss = tf.add(tf.sum(p.text), tf.sum(tf.mul(tf.reshape(tf.range(0, batch * k), [batch * k, 1]), p.visual))) as tf.Scalar;
          pi.fill(0); // the caller reuses its array before the backward pass runs
          return loss;
        })([t, v]),
      );
      assert.equal(tf.memory().numTensors, before + 2, 'only the two returned gradients stay alive');
      // d visual_j = sum of (row number) over the rows that picked video j; d text = K.
      const picked = modalityShuffle(batch, { k, seed: 1 });
      const expected = new Float32Array(batch * dim);
      picked.forEach((j, r) => {
        for (let c = 0; c < dim; c++) expected[j * dim + c] += r;
      });
      assert.deepEqual(Array.from(dv.dataSync()), Array.from(expected));
      assert.deepEqual(Array.from(dt.dataSync()), new Array(batch * dim).fill(k));
      tf.dispose([t, v, dt, dv]);
    });
  });
}

describe('mbvr/tfjs: a learned logit scale s = ln(1 / tau)', () => {
  const clamp = (s: number) => Math.min(Math.max(s, LOGIT_SCALE_MIN), LOGIT_SCALE_MAX);
  /** loss and dL/ds through mbvrLoss, and the native result at tau = exp(-clamp(s)). */
  function run(c: ReturnType<typeof randomCase>, options: MbvrOptions, s: number) {
    const { batch, dim, k } = c;
    const scale = tf.scalar(s);
    const xs = names.map((n) => tf.tensor(c[n], n === 'shuffled' ? [batch * k, dim] : [batch, dim]));
    const f = (...args: tf.Tensor[]) =>
      mbvrLoss({ query: args[0], fused: args[1], visual: args[2], text: args[3], shuffled: args[4] }, { ...options, logitScale: args[5] });
    const { value, grads } = tf.valueAndGrads(f as (...args: tf.Tensor[]) => tf.Scalar)([...xs, scale]);
    const s32 = scale.dataSync()[0];
    const out = { loss: value.dataSync()[0], dS: grads[5].dataSync()[0], s32, tau: Math.exp(-clamp(s32)) };
    tf.dispose([scale, ...xs, value, ...grads]);
    return { ...out, native: mbvrLossSync(c, { ...options, temperature: out.tau }) };
  }

  it('inside [0, ln 100]: the loss at tau = exp(-s), dL/ds = -tau dL/dtau, and a float64 finite difference agrees', async () => {
    await tf.setBackend('cpu');
    const random = rng(suiteSeed + 8);
    for (let trial = 0; trial < 6; trial++) {
      const c = randomCase(random, randInt(random, 2, 24), randInt(random, 2, 16), randInt(random, 1, 3));
      const { temperature: _, ...options } = randomOptions(random, c.batch);
      const s = 0.2 + random() * (LOGIT_SCALE_MAX - 0.4);
      const out = run(c, options, s);
      const what = `trial ${trial}: s = ${s}`;
      assert.equal(out.loss, Math.fround(out.native.loss), what);
      assert.equal(out.dS, Math.fround(-out.tau * out.native.grads!.temperature), `${what}: the chain rule`);
      // Central difference of the float64 reference loss in s.
      const h = 1e-4;
      const at = (x: number) => referenceLoss(c, { ...options, temperature: Math.exp(-x) }).loss;
      const fd = (at(out.s32 + h) - at(out.s32 - h)) / (2 * h);
      assert.ok(Math.abs(out.dS - fd) <= 1e-4 * Math.max(1, Math.abs(fd)), `${what}: dL/ds ${out.dS} against the finite difference ${fd}`);
    }
  });

  it('outside: tau is clamped to [0.01, 1], and only a gradient that steps s back inside reaches s', () => {
    const random = rng(suiteSeed + 9);
    const [batch, dim] = [12, 8];
    const query = randomRows(random, batch, dim);
    const other = randomRows(random, batch, dim);
    // fused = query: a sharper softmax (lower tau) lowers the loss, dL/dtau > 0;
    // fused = -query: the positives score lowest, a flatter one helps, dL/dtau < 0.
    const cases = [
      { name: 'aligned', fused: query.slice(), sign: 1 },
      { name: 'anti-aligned', fused: query.map((x) => -x), sign: -1 },
    ];
    const options: MbvrOptions = { alpha: 0, beta: 0, gamma: 0 };
    for (const s of [LOGIT_SCALE_MAX + 1.5, LOGIT_SCALE_MIN - 1.5])
      for (const { name, fused, sign } of cases) {
        const c = Object.defineProperty({ batch, dim, query, fused, visual: other, text: other, shuffled: other }, 'k', { value: 1 }) as Case;
        const out = run(c, options, s);
        const what = `s = ${s}, ${name}`;
        assert.equal(out.tau, s > 0 ? Math.exp(-LOGIT_SCALE_MAX) : 1, what);
        assert.equal(out.loss, Math.fround(out.native.loss), what);
        const dLdtau = out.native.grads!.temperature;
        assert.equal(Math.sign(dLdtau), sign, `${what}: the case has the gradient sign it is meant to have`);
        const g = -out.tau * dLdtau; // descent moves s by -lr * g
        const backInside = s > LOGIT_SCALE_MAX ? g > 0 : g < 0;
        assert.equal(out.dS, backInside ? Math.fround(g) : 0, `${what}: ${backInside ? 'passes' : 'is dropped'}`);
      }
  });

  it('an optimizer step too large for a plain temperature variable: tau < 0 throws; the logit scale stays usable', () => {
    const random = rng(suiteSeed + 10);
    const [batch, dim] = [16, 8];
    const query = randomRows(random, batch, dim);
    const inputs = { query: tf.tensor2d(query, [batch, dim]), fused: tf.tensor2d(query, [batch, dim]) };
    const options = { alpha: 0, beta: 0, gamma: 0 };
    // Aligned rows: dL/dtau > 0, so SGD lowers tau; this rate takes it to -tau in one step.
    const g = mbvrLossSync({ batch, dim, query, fused: query }, { ...options, temperature: 0.05 }).grads!.temperature;
    const temperature = tf.variable(tf.scalar(0.05));
    const sgd = tf.train.sgd((2 * 0.05) / Math.fround(g));
    sgd.minimize(() => mbvrLoss(inputs, { ...options, temperature }));
    assert.ok(temperature.dataSync()[0] < 0, `tau stepped to ${temperature.dataSync()[0]}`);
    assert.throws(() => mbvrLoss(inputs, { ...options, temperature }), { name: 'RangeError', message: /temperature/ });

    const logitScale = tf.variable(tf.scalar(Math.log(1 / 0.05)));
    const big = tf.train.sgd(1e4);
    const losses = [0, 1, 2].map(() => {
      const loss = big.minimize(() => mbvrLoss(inputs, { ...options, logitScale }), true)!;
      const value = loss.dataSync()[0];
      loss.dispose();
      return { value, s: logitScale.dataSync()[0] };
    });
    assert.ok(losses[0].s > LOGIT_SCALE_MAX, `the first step took s past ln 100: ${losses[0].s}`);
    assert.ok(losses.every((l) => Number.isFinite(l.value)));
    // Past the bound the loss still wants a larger s; that gradient is dropped, s stays.
    assert.equal(losses[2].s, losses[0].s);
    assert.equal(losses[2].value, Math.fround(mbvrLossSync({ batch, dim, query, fused: query }, { ...options, temperature: Math.exp(-LOGIT_SCALE_MAX) }).loss));
    tf.dispose([inputs.query, inputs.fused, temperature, logitScale]);
    sgd.dispose();
    big.dispose();
  });

  it('names bad input', () => {
    const q = tf.zeros([4, 3]);
    const options = { alpha: 0, beta: 0, gamma: 0 };
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { ...options, temperature: 0.1, logitScale: tf.scalar(1) }), {
      name: 'TypeError',
      message: 'Expected temperature or logitScale (not both) for options but received both',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { ...options, logitScale: tf.zeros([2]) }), {
      name: 'RangeError',
      message: 'Expected a one-element tensor for logitScale but received shape [2]',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { ...options, logitScale: 2 as never }), {
      name: 'TypeError',
      message: 'Expected a tf.Tensor (one @tensorflow/tfjs-core in the project) for logitScale but received 2 of type number',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { ...options, logitScale: tf.scalar(NaN) }), {
      name: 'RangeError',
      message: 'Expected a finite value for logitScale but received NaN of type number',
    });
    // grads: false would be silently ignored (tf.grad asks for the gradients itself).
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { ...options, grads: false } as never), {
      name: 'TypeError',
      message: 'Expected no grads option in mbvr/tfjs (its gradients are computed when tf.grad asks for them) for options.grads but received false of type boolean',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: q, temperature: 0.1 } as never, options), {
      name: 'TypeError',
      message: 'Expected one of the inputs query, fused, visual, text, shuffled (temperature belongs in options, the second argument) for inputs.temperature but received 0.1 of type number',
    });
    // The adapter's own options, with its own names in the list and the suggestion.
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { ...options, logitscale: tf.scalar(1) } as never), {
      name: 'TypeError',
      message: /^Expected one of the options temperature, logitScale, alpha, .*, comm, onResult \(did you mean 'logitScale'\?\) for options.logitscale but received/,
    });
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { ...options, query: q } as never), /\(query belongs in inputs, the first argument\) for options.query/);
  });

  it('takes a margin tensor of one value as one number', () => {
    const random = rng(suiteSeed + 41);
    const c = randomCase(random, 5, 3, 1);
    const [query, fused] = [tf.tensor2d(c.query, [5, 3]), tf.tensor2d(c.fused, [5, 3])];
    // A float32 tensor holds 0.2 as 0.2000000030; the number must be that same value, or the
    // fused positive differs by 3e-9 / tau and the loss now and then by one ulp.
    const scalar = tf.scalar(0.2), number = Math.fround(0.2);
    const options = { alpha: 0, beta: 0, gamma: 0 };
    const a = mbvrLoss({ query, fused }, { ...options, margin: scalar }).dataSync()[0];
    const b = mbvrLoss({ query, fused }, { ...options, margin: number }).dataSync()[0];
    assert.equal(a, b);
    assert.notEqual(a, mbvrLoss({ query, fused }, options).dataSync()[0]); // the margin is in use
    tf.dispose([query, fused, scalar]);
  });
});

describe('mbvr/tfjs input checks', () => {
  let q: tf.Tensor;
  it('names the argument and the rule', async () => {
    await tf.setBackend('cpu');
    q = tf.zeros([4, 3]);
    assert.throws(() => mbvrLoss({ query: new Float32Array(12) as never, fused: q }), {
      name: 'TypeError',
      message: 'Expected a tf.Tensor (one @tensorflow/tfjs-core in the project) for query but received Float32Array',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: tf.zeros([4, 2]) }, { alpha: 0, beta: 0, gamma: 0 }), {
      name: 'RangeError',
      message: 'Expected shape [4, 3] (batch, dim) for fused but received shape [4, 2]',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: q, shuffled: tf.zeros([6, 3]) }, { alpha: 0, beta: 0 }), {
      name: 'RangeError',
      message: 'Expected shape [4, k, 3] or [4 * k, 3] (batch, k, dim) for shuffled but received shape [6, 3]',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: tf.zeros([4, 3], 'int32') }), {
      name: 'TypeError',
      message: 'Expected a float32 tensor for fused but received a int32 tensor',
    });
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { temperature: tf.zeros([2]) }), {
      name: 'RangeError',
      message: 'Expected a number or a one-element tensor for temperature but received shape [2]',
    });
  });
  it('passes the core checks through (a weight without its input)', () => {
    assert.throws(() => mbvrLoss({ query: q, fused: q }), { name: 'TypeError', message: /for visual/ });
    assert.throws(() => mbvrLoss({ query: q, fused: q }, { alpha: 0, beta: 0, gamma: 0, temperature: -1 }), {
      name: 'RangeError',
      message: /temperature/,
    });
  });
  it('shuffledPairs names the argument and the rule, and leaves pi as it was', () => {
    const t = tf.zeros([4, 3]);
    const pi = Int32Array.from([1, 2, 3, 0]);
    assert.throws(() => shuffledPairs(new Float32Array(12) as never, t, pi), {
      name: 'TypeError',
      message: 'Expected a tf.Tensor (one @tensorflow/tfjs-core in the project) for text but received Float32Array',
    });
    assert.throws(() => shuffledPairs(t, tf.zeros([4, 3], 'int32'), pi), {
      name: 'TypeError',
      message: 'Expected a float32 tensor for visual but received a int32 tensor',
    });
    assert.throws(() => shuffledPairs(tf.scalar(1), t, pi), {
      name: 'RangeError',
      message: 'Expected a tensor of one row per video [batch, ...] for text but received shape []',
    });
    // visual may have any number of rows that pi indexes (a data-parallel rank's visuals).
    assert.throws(() => shuffledPairs(t, tf.zeros([3, 5]), pi), {
      name: 'RangeError',
      message: `Expected a row of visual, 0 to 2 for pi[${Array.from(pi).findIndex((j) => j >= 3)}] but received 3 of type number`,
    });
    assert.throws(() => shuffledPairs(t, t, [1, 2, 3, 0] as never), {
      name: 'TypeError',
      message: 'Expected an Int32Array (from modalityShuffle) for pi but received Array',
    });
    assert.throws(() => shuffledPairs(t, t, new Int32Array(6)), {
      name: 'RangeError',
      message: 'Expected a length that is a positive multiple of 4 (batch x k) for pi but received length 6',
    });
    assert.throws(() => shuffledPairs(t, t, Int32Array.from([1, 2, 4, 0])), {
      name: 'RangeError',
      message: 'Expected a row of visual, 0 to 3 for pi[2] but received 4 of type number',
    });
    const disposed = tf.zeros([4, 3]);
    disposed.dispose();
    assert.throws(() => shuffledPairs(t, disposed, pi), { name: 'TypeError', message: 'Expected a live tf.Tensor for visual but received a disposed tensor' });
    const pairs = shuffledPairs(t, t, pi);
    assert.deepEqual(Array.from(pi), [1, 2, 3, 0]);
    tf.dispose([t, pairs.text, pairs.visual]);
  });
});

describe('the mbvr/tfjs subpath', () => {
  const built = fs.existsSync(path.join(root, 'dist', 'tfjs.js')) && fs.existsSync(path.join(root, 'dist', 'tfjs.mjs'));
  const skip = built ? false : 'dist/ is not built (npm run build:ts)';
  const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();

  it('loads with require and with import (package "exports")', { skip }, () => {
    assert.equal(node(['-e', "const m = require('mbvr/tfjs'); console.log(typeof m.mbvrLoss, typeof m.shuffledPairs)"]), 'function function');
    assert.equal(
      node(['--input-type=module', '-e', "import { mbvrLoss, shuffledPairs } from 'mbvr/tfjs'; console.log(typeof mbvrLoss, typeof shuffledPairs)"]),
      'function function',
    );
  });

  it("`mbvr` itself never loads tfjs", { skip }, () => {
    const probe = "require('mbvr'); console.log(Object.keys(require.cache).some((f) => f.includes('@tensorflow')))";
    assert.equal(node(['-e', probe]), 'false');
  });
});

// A folder of its own per case, as a user's project: node_modules holds mbvr (a link to
// this checkout, or a copy of its dist/ where tfjs must be out of reach) and exactly the
// tfjs packages the case names (links into our node_modules). Each script runs in a child
// process.
describe('mbvr/tfjs in a project of its own (child processes)', { timeout: 240_000 }, () => {
  const built = fs.existsSync(path.join(root, 'dist', 'tfjs.js')) && fs.existsSync(path.join(root, 'dist', 'tfjs.mjs'));
  const skip = built ? false : 'dist/ is not built (npm run build:ts)';
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-tfjs-'));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  function project(name: string, packages: string[], mbvr: 'link' | 'copy' = 'link'): string {
    const dir = path.join(work, name);
    fs.mkdirSync(path.join(dir, 'node_modules', '@tensorflow'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }));
    for (const p of packages) fs.symlinkSync(path.join(root, 'node_modules', p), path.join(dir, 'node_modules', p), 'dir');
    const target = path.join(dir, 'node_modules', 'mbvr');
    if (mbvr === 'link') fs.symlinkSync(root, target, 'dir');
    else {
      fs.mkdirSync(target);
      fs.copyFileSync(path.join(root, 'package.json'), path.join(target, 'package.json'));
      fs.cpSync(path.join(root, 'dist'), path.join(target, 'dist'), { recursive: true });
    }
    return dir;
  }

  function runScript(dir: string, file: string, source: string): { status: number | null; stdout: string; stderr: string } {
    fs.writeFileSync(path.join(dir, file), source);
    const out = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    return { status: out.status, stdout: out.stdout, stderr: out.stderr };
  }

  // Five Adam steps of a linear two-tower model with shuffledPairs, a learned logit scale
  // and labels with duplicates; prints the backend and the losses as JSON.
  const training = (loadLines: string[], backend: string, esm: boolean) =>
    [
      ...loadLines,
      esm
        ? "import { modalityShuffle } from 'mbvr';\nimport { mbvrLoss, shuffledPairs } from 'mbvr/tfjs';"
        : "const { modalityShuffle } = require('mbvr');\nconst { mbvrLoss, shuffledPairs } = require('mbvr/tfjs');",
      `(async () => {
        tf.env().set('PROD', true);
        if (!(await tf.setBackend('${backend}'))) throw new Error('no ${backend} backend');
        const [B, D, K] = [16, 8, 3];
        const labels = Int32Array.from({ length: B }, (_, i) => i % 12);
        const x = tf.randomNormal([B, D], 0, 1, 'float32', 1);
        const [Wq, Wt, Wv] = [2, 3, 4].map((s) => tf.variable(tf.randomNormal([D, D], 0, 0.5, 'float32', s)));
        const logitScale = tf.variable(tf.scalar(Math.log(1 / 0.07)));
        const optimizer = tf.train.adam(0.05);
        const losses = [];
        for (let step = 0; step < 5; step++) {
          const pi = modalityShuffle(B, { k: K, seed: step, labels });
          const loss = optimizer.minimize(() => {
            const q = tf.matMul(x, Wq), t = tf.matMul(x, Wt), v = tf.matMul(x, Wv);
            const p = shuffledPairs(t, v, pi);
            return mbvrLoss({ query: q, fused: tf.add(t, v), visual: v, text: t, shuffled: tf.add(p.text, p.visual) },
                            { logitScale, labels, margin: 0.1 });
          }, true);
          losses.push(loss.dataSync()[0]);
        }
        console.log(JSON.stringify({ backend: tf.getBackend(), losses }));
      })().catch((e) => { console.error(e.message); process.exitCode = 1; });`,
    ].join('\n');

  const setups: { name: string; packages: string[]; cjs: string[]; esm: string[]; backend: string }[] = [
    {
      name: 'core-cpu-layers',
      packages: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-layers'],
      cjs: ["const tf = require('@tensorflow/tfjs-core');", "require('@tensorflow/tfjs-backend-cpu');", "require('@tensorflow/tfjs-layers');"],
      esm: ["import * as tf from '@tensorflow/tfjs-core';", "import '@tensorflow/tfjs-backend-cpu';", "import '@tensorflow/tfjs-layers';"],
      backend: 'cpu',
    },
    {
      name: 'core-wasm-layers',
      packages: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-layers'],
      cjs: ["const tf = require('@tensorflow/tfjs-core');", "require('@tensorflow/tfjs-backend-wasm');", "require('@tensorflow/tfjs-layers');"],
      esm: ["import * as tf from '@tensorflow/tfjs-core';", "import '@tensorflow/tfjs-backend-wasm';", "import '@tensorflow/tfjs-layers';"],
      backend: 'wasm',
    },
    {
      name: 'tfjs',
      packages: ['@tensorflow/tfjs'],
      cjs: ["const tf = require('@tensorflow/tfjs');"],
      esm: ["import * as tf from '@tensorflow/tfjs';"],
      backend: 'cpu',
    },
  ];
  for (const setup of setups)
    it(`trains with ${setup.packages.join(' + ')}, in CommonJS and in ESM`, { skip }, () => {
      const dir = project(setup.name, setup.packages);
      for (const [file, lines] of [['train.cjs', setup.cjs], ['train.mjs', setup.esm]] as const) {
        const out = runScript(dir, file, training(lines, setup.backend, file.endsWith('.mjs')));
        assert.equal(out.status, 0, `${file}: ${out.stderr}`);
        const { backend, losses } = JSON.parse(out.stdout.trim().split('\n').pop()!) as { backend: string; losses: number[] };
        assert.equal(backend, setup.backend, file);
        assert.ok(losses.every(Number.isFinite) && losses[4] < losses[0], `${file}: losses ${losses}`);
      }
    });

  it('with @tensorflow/tfjs-core and a backend alone, gradients are missing: the failure comes with a warning that names the fix', { skip }, () => {
    const dir = project('core-cpu', ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu']);
    const cjs = ["const tf = require('@tensorflow/tfjs-core');", "require('@tensorflow/tfjs-backend-cpu');"];
    const esm = [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import '@tensorflow/tfjs-backend-cpu';",
      // What docs/trainers.md used to advise; an ES module Node cannot load.
      "try { await import('@tensorflow/tfjs-core/dist/register_all_gradients.js'); console.log('registered'); } catch {}",
    ];
    for (const [file, lines] of [['train.cjs', cjs], ['train.mjs', esm]] as const) {
      const out = runScript(dir, file, training(lines, 'cpu', file.endsWith('.mjs')));
      assert.equal(out.status, 1, `${file}: ${out.stdout}`);
      assert.ok(!out.stdout.includes('registered'), file);
      assert.match(out.stderr, /gradient function not found for/, file);
      assert.match(out.stderr, /MbvrWarning: TensorFlow\.js has no gradients registered.*@tensorflow\/tfjs-layers/, file);
    }
  });

  it('without tfjs installed, require and import fail with a catchable Error that says what to install', { skip }, () => {
    const dir = project('no-tfjs', [], 'copy');
    const report = "(e) => console.log(e instanceof Error, e.message.split('\\n')[0], e.message.includes('npm install @tensorflow/tfjs'))";
    const scripts: [string, string][] = [
      ['require.cjs', `console.log(typeof require('mbvr').mbvrLossSync);\ntry { require('mbvr/tfjs'); } catch (e) { (${report})(e); }\nconsole.log('after');`],
      ['import.mjs', `console.log(typeof (await import('mbvr')).mbvrLossSync);\ntry { await import('mbvr/tfjs'); } catch (e) { (${report})(e); }\nconsole.log('after');`],
      ['import.cjs', `console.log(typeof require('mbvr').mbvrLossSync);\nimport('mbvr/tfjs').catch(${report}).then(() => console.log('after'));`],
    ];
    for (const [file, source] of scripts) {
      const out = runScript(dir, file, source);
      assert.equal(out.status, 0, `${file} ended the process: ${out.stderr}`);
      assert.deepEqual(
        out.stdout.trim().split('\n'),
        [
          'function',
          'true mbvr/tfjs: could not load @tensorflow/tfjs-core (TensorFlow.js), an optional peer dependency of mbvr. true',
          'after',
        ],
        file,
      );
    }
  });

  it('examples/train/train.mjs runs with plain node and its loss falls', { skip }, () => {
    const out = spawnSync(process.execPath, [path.join(root, 'examples', 'train', 'train.mjs'), '--steps', '40'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    assert.equal(out.status, 0, out.stderr);
    const fell = /loss fell from ([\d.]+) to ([\d.]+)/.exec(out.stdout);
    assert.ok(fell, out.stdout);
    assert.ok(Number(fell[2]) < 0.9 * Number(fell[1]), out.stdout);
    assert.match(out.stdout, /held-out recall@1 [\d.]+/);
    assert.equal(out.stderr, '', 'no warnings');
  });
});
