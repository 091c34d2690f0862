// mbvr/tfjs: the TensorFlow.js op's value and gradients are the native ones (for every
// input, on tfjs's cpu and wasm backends), tfjs optimizers train through it, bad input
// is named, and the subpath loads (CommonJS and ESM) while `mbvr` alone never loads tfjs.
// (tfjs-core plus backends rather than the @tensorflow/tfjs bundle: the bundle's layers
// typings do not pass `tsc` with skipLibCheck off; the wasm typings need emscripten's.)
/// <reference types="emscripten" />
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { mbvrLossSync } from '../src/index';
import { mbvrLoss } from '../src/tfjs';
import type { MbvrOptions } from '../src/types';
import { randomCase, randomOptions, relativeError, rng, sameBits, suiteSeed } from './helpers';

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
  });
}

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
});

describe('the mbvr/tfjs subpath', () => {
  const built = fs.existsSync(path.join(root, 'dist', 'tfjs.js')) && fs.existsSync(path.join(root, 'dist', 'tfjs.mjs'));
  const skip = built ? false : 'dist/ is not built (npm run build:ts)';
  const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();

  it('loads with require and with import (package "exports")', { skip }, () => {
    assert.equal(node(['-e', "console.log(typeof require('mbvr/tfjs').mbvrLoss)"]), 'function');
    assert.equal(node(['--input-type=module', '-e', "import { mbvrLoss } from 'mbvr/tfjs'; console.log(typeof mbvrLoss)"]), 'function');
  });

  it("`mbvr` itself never loads tfjs", { skip }, () => {
    const probe = "require('mbvr'); console.log(Object.keys(require.cache).some((f) => f.includes('@tensorflow')))";
    assert.equal(node(['-e', probe]), 'false');
  });

  it('without tfjs installed, says what to install', { skip }, () => {
    // Hides @tensorflow/* from the resolver, as in a project that never installed tfjs.
    const probe = `const Module = require('node:module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request.startsWith('@tensorflow/')) throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
        return resolve.call(this, request, ...rest);
      };
      console.log(typeof require('mbvr').mbvrLossSync);
      try { require('mbvr/tfjs'); } catch (e) { console.log(e.message); }`;
    const lines = node(['-e', probe]).split('\n');
    assert.equal(lines[0], 'function', 'the core package works without tfjs');
    assert.equal(lines[1], 'mbvr/tfjs: could not load @tensorflow/tfjs-core (TensorFlow.js), an optional peer dependency of mbvr.');
    assert.ok(lines.includes('- install TensorFlow.js next to mbvr: npm install @tensorflow/tfjs (or @tensorflow/tfjs-node, or @tensorflow/tfjs-core with a backend)'));
  });
});
