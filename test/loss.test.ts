// The native loss against the float64 reference (docs/math.md §2-§5), and the
// properties around it: async equals sync, determinism, inputs untouched, omissions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mbvrLoss, mbvrLossSync } from '../src/index';
import type { MbvrInputs, MbvrOptions } from '../src/types';
import {
  backend,
  compareToReference,
  GRAD_KEYS,
  inputsOf,
  precision,
  randInt,
  randomCase,
  randomOptions,
  relativeError,
  rng,
  sameBits,
  suiteSeed,
} from './helpers';

describe(`mbvrLoss on ${backend}/${precision} against the float64 reference`, () => {
  it('agrees over 60 random configurations (shapes, labels, margins, K, temperature, normalize)', () => {
    const random = rng(suiteSeed);
    for (let n = 0; n < 60; n++) {
      // A third of the cases are larger than one tile block (128 rows) to cover the tiling.
      const batch = n % 3 === 0 ? randInt(random, 129, 300) : randInt(random, 1, 128);
      const dim = n % 5 === 0 ? randInt(random, 129, 300) : randInt(random, 1, 96);
      const k = randInt(random, 1, 4);
      const c = randomCase(random, batch, dim, k);
      const options = { ...randomOptions(random, batch), backend, precision };
      const inputs = inputsOf(c, options, random);
      const label = `case ${n} (B=${batch} D=${dim} K=${k} tau=${options.temperature?.toFixed(4)} normalize=${options.normalize} labels=${!!options.labels} margin=${typeof options.margin} alpha=${options.alpha?.toFixed(2)} beta=${options.beta?.toFixed(2)} gamma=${options.gamma?.toFixed(2)}, seed ${suiteSeed})`;
      compareToReference(mbvrLossSync(inputs, options), inputs, options, label);
    }
  });

  it('agrees at the smallest temperature with duplicates everywhere', () => {
    const random = rng(suiteSeed + 1);
    const c = randomCase(random, 200, 64, 3);
    const labels = Int32Array.from({ length: 200 }, (_, i) => i % 50); // every id 4 times
    const options: MbvrOptions = { temperature: 0.01, labels, margin: 0.2, backend, precision };
    const inputs: MbvrInputs = { ...c };
    compareToReference(mbvrLossSync(inputs, options), inputs, options, `tau=0.01 seed ${suiteSeed}`);
  });

  it('gives the same bits from mbvrLoss (async) and mbvrLossSync', async () => {
    const random = rng(suiteSeed + 2);
    const c = randomCase(random, 257, 40, 2);
    const options: MbvrOptions = { ...randomOptions(random, 257), alpha: 1, beta: 1, gamma: 1, backend, precision };
    const a = mbvrLossSync(c, options);
    const b = await mbvrLoss(c, options);
    assert.equal(b.loss, a.loss);
    assert.deepEqual(b.terms, a.terms);
    for (const key of GRAD_KEYS) assert.ok(sameBits(b.grads![key]!, a.grads![key]!), `grads.${key} differ`);
    assert.equal(b.grads!.temperature, a.grads!.temperature);
  });

  it('gives the same bits whatever the thread count (cpu)', { skip: backend !== 'cpu' }, () => {
    const random = rng(suiteSeed + 3);
    const c = randomCase(random, 700, 33, 2);
    const options: MbvrOptions = { ...randomOptions(random, 700), alpha: 0.5, beta: 1, gamma: 1, backend };
    const base = mbvrLossSync(c, { ...options, threads: 1 });
    for (const threads of [2, 3, 5, 8]) {
      const other = mbvrLossSync(c, { ...options, threads });
      assert.equal(other.loss, base.loss, `loss with ${threads} threads`);
      assert.equal(other.grads!.temperature, base.grads!.temperature);
      for (const key of GRAD_KEYS) assert.ok(sameBits(other.grads![key]!, base.grads![key]!), `grads.${key} with ${threads} threads`);
    }
  });

  it('gives the same bits with and without the fused-logit cache (cpu)', { skip: backend !== 'cpu' }, () => {
    const random = rng(suiteSeed + 9);
    const c = randomCase(random, 1100, 40, 2);
    const options: MbvrOptions = { ...randomOptions(random, 1100), alpha: 1, beta: 1, gamma: 1, backend };
    const cached = mbvrLossSync(c, { ...options, logitCacheBytes: 64 << 20 });
    const recomputed = mbvrLossSync(c, { ...options, logitCacheBytes: 0 });
    assert.equal(recomputed.loss, cached.loss);
    assert.equal(recomputed.grads!.temperature, cached.grads!.temperature);
    for (const key of GRAD_KEYS) assert.ok(sameBits(recomputed.grads![key]!, cached.grads![key]!), `grads.${key}`);
  });

  it('never modifies its inputs', async () => {
    const random = rng(suiteSeed + 4);
    const c = randomCase(random, 150, 20, 2);
    const options: MbvrOptions = {
      margin: new Float32Array(150).fill(0.1),
      labels: Int32Array.from({ length: 150 }, (_, i) => i % 40),
      backend,
      precision,
    };
    const copies = structuredClone({ c, options });
    mbvrLossSync(c, options);
    await mbvrLoss(c, options);
    assert.deepEqual(c, copies.c);
    assert.deepEqual(options, copies.options);
  });

  it('returns no gradients with grads: false, and the same loss', () => {
    const random = rng(suiteSeed + 5);
    const c = randomCase(random, 90, 16, 1);
    const withGrads = mbvrLossSync(c, { backend, precision });
    const without = mbvrLossSync(c, { backend, precision, grads: false });
    assert.equal((without as { grads?: unknown }).grads, undefined);
    assert.equal(without.loss, withGrads.loss);
    assert.equal(without.backend, backend);
  });

  it('costs nothing for a weight-0 term and zeroes the gradient of its given input', () => {
    const random = rng(suiteSeed + 6);
    const c = randomCase(random, 64, 8, 2);
    const out = mbvrLossSync(c, { alpha: 0, beta: 0, gamma: 0, backend, precision });
    assert.deepEqual([out.terms.v, out.terms.t, out.terms.ms], [0, 0, 0]);
    assert.equal(out.loss, out.terms.qm + out.terms.mq);
    for (const key of ['visual', 'text', 'shuffled'] as const) assert.ok(out.grads![key]!.every((x) => x === 0));
    const only = mbvrLossSync(
      { batch: 64, dim: 8, query: c.query, fused: c.fused },
      { alpha: 0, beta: 0, gamma: 0, backend, precision },
    );
    assert.equal(only.loss, out.loss);
    assert.deepEqual(Object.keys(only.grads!).sort(), ['fused', 'query', 'temperature']);
  });

  it('takes tensor-likes ({ data, shape } and { data, dims }) with the sizes read from them', () => {
    const random = rng(suiteSeed + 7);
    const c = randomCase(random, 30, 12, 2);
    const options: MbvrOptions = { backend, precision };
    const plain = mbvrLossSync(c, options);
    const tensors = mbvrLossSync(
      {
        query: { data: c.query, shape: [30, 12] },
        fused: { data: c.fused, dims: [30, 12] },
        visual: { data: c.visual, shape: [30, 12] },
        text: { data: c.text, shape: [30, 12], stride: [12, 1], offset: 0 },
        shuffled: { data: c.shuffled, shape: [30, 2, 12] },
      },
      options,
    );
    assert.equal(tensors.loss, plain.loss);
    assert.ok(sameBits(tensors.grads!.shuffled!, plain.grads!.shuffled!));
    // A tfjs-style tensor whose data() is a method: read through dataSync().
    const tfLike = { data: () => Promise.resolve(c.query), dataSync: () => c.query, shape: [30, 12] };
    assert.equal(mbvrLossSync({ ...c, query: tfLike }, options).loss, plain.loss);
  });

  it('returns new gradient arrays, never views of an input', () => {
    const random = rng(suiteSeed + 8);
    const c = randomCase(random, 10, 4, 1);
    const out = mbvrLossSync(c, { backend, precision });
    const inputBuffers = new Set([c.query, c.fused, c.visual, c.text, c.shuffled].map((a) => a.buffer));
    for (const key of GRAD_KEYS) assert.ok(!inputBuffers.has(out.grads![key]!.buffer as ArrayBuffer));
  });
});
