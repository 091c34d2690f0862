// Extreme inputs: tiny temperature with identical rows, row norms from 1e-20 to 1e20,
// zero rows. Every output finite; where the float64 reference is well-conditioned,
// equal to it. Unrepresentable settings (huge rows without normalisation) are refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mbvrLossSync, referenceLoss } from '../src/index';
import type { MbvrInputs, MbvrOptions, MbvrResult } from '../src/types';
import { backend, hasNonFinite, precision, randomCase, relativeError, rng, scalarError, suiteSeed, tolerance } from './helpers';

function assertFinite(out: MbvrResult, label: string): void {
  assert.ok(Number.isFinite(out.loss), `${label}: loss ${out.loss}`);
  for (const v of Object.values(out.terms)) assert.ok(Number.isFinite(v), `${label}: a term is ${v}`);
  for (const [key, g] of Object.entries(out.grads!))
    assert.ok(typeof g === 'number' ? Number.isFinite(g) : !hasNonFinite(g), `${label}: grads.${key} not finite`);
}

const base: MbvrOptions = { backend, precision };

describe('numerics', () => {
  it('temperature 0.01 with identical and near-identical rows', () => {
    const random = rng(suiteSeed + 400);
    const c = randomCase(random, 96, 32, 2);
    const row = c.query.slice(0, 32);
    for (const inputs of [c.query, c.fused, c.visual, c.text]) for (let i = 0; i < 96; i++) inputs.set(row, i * 32);
    for (let i = 0; i < 192; i++) c.shuffled.set(row, i * 32);
    const identical = mbvrLossSync(c, { ...base, temperature: 0.01 });
    assertFinite(identical, 'identical');
    // All logits equal (100, up to fp32 rounding of about 1e-5): each softmax is uniform
    // over B (or K + 1) entries.
    assert.ok(Math.abs(identical.terms.qm - Math.log(96)) < 1e-4, `qm ${identical.terms.qm}`);
    assert.ok(Math.abs(identical.terms.ms - Math.log(3)) < 1e-4, `ms ${identical.terms.ms}`);
    for (const x of [c.query, c.fused, c.visual, c.text, c.shuffled]) for (let i = 0; i < x.length; i++) x[i] += (random() - 0.5) * 1e-4;
    const near = mbvrLossSync(c, { ...base, temperature: 0.01 });
    assertFinite(near, 'near-identical');
    const ref = referenceLoss(c as Parameters<typeof referenceLoss>[0], { temperature: 0.01 });
    assert.ok(scalarError(near.loss, ref.loss) < tolerance);
  });

  it('row norms from 1e-20 to 1e20 (normalized)', () => {
    const random = rng(suiteSeed + 401);
    const c = randomCase(random, 64, 16, 2);
    const scale = (x: Float32Array, rows: number) => {
      for (let i = 0; i < rows; i++) {
        const s = 10 ** (-20 + 40 * random());
        for (let d = 0; d < 16; d++) x[i * 16 + d] *= s;
      }
    };
    scale(c.query, 64);
    scale(c.fused, 64);
    scale(c.visual, 64);
    scale(c.text, 64);
    scale(c.shuffled, 128);
    const out = mbvrLossSync(c, { ...base, margin: 0.2, temperature: 0.02 });
    assertFinite(out, 'scaled rows');
    const ref = referenceLoss(c as Parameters<typeof referenceLoss>[0], { margin: 0.2, temperature: 0.02 });
    // Rows above 1e-12 normalise exactly as in float64; rows below are clamped alike.
    assert.ok(scalarError(out.loss, ref.loss) < tolerance, `loss ${out.loss} vs ${ref.loss}`);
    for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) {
      // dL/dx scales as 1/||x||: compare the scale-free products ||x_i|| * dL/dx_i,
      // so rows of norm 1e-20 and of 1e20 weigh alike.
      const x = c[key];
      const g = Float64Array.from(out.grads![key]!);
      const r = Float64Array.from(ref.grads[key]!);
      for (let i = 0; i < x.length / 16; i++) {
        let ss = 0;
        for (let d = 0; d < 16; d++) ss += x[i * 16 + d] ** 2;
        const f = Math.max(Math.sqrt(ss), 1e-12);
        for (let d = 0; d < 16; d++) {
          g[i * 16 + d] *= f;
          r[i * 16 + d] *= f;
        }
      }
      const err = relativeError(g, r);
      assert.ok(err < tolerance, `grads.${key}: relative error ${err}`);
    }
  });

  it('zero rows give finite outputs (they normalise to zero, as in PyTorch)', () => {
    const random = rng(suiteSeed + 402);
    const c = randomCase(random, 50, 10, 1);
    for (const x of [c.query, c.fused, c.visual, c.text, c.shuffled]) x.fill(0, 0, 50); // rows 0..4 zero
    for (const normalize of [true, false]) {
      const out = mbvrLossSync(c, { ...base, normalize });
      assertFinite(out, `normalize ${normalize}`);
      const ref = referenceLoss(c as Parameters<typeof referenceLoss>[0], { normalize });
      assert.ok(scalarError(out.loss, ref.loss) < tolerance);
      assert.ok(relativeError(out.grads!.query, ref.grads.query) < tolerance);
    }
  });

  // Confident soft-maxes: every positive far above the rest (tau = 0.01, positives that
  // nearly duplicate their queries), so p is within ~1e-6 of 1 and the positives'
  // gradients p - 1 are tiny. A backend that keeps a positive inside its log-sum-exp and
  // forms p - 1 in float loses them to cancellation (a numpy model of the earlier CUDA
  // tiles predicted 0.2-0.4 relative error here): docs/math.md §3.1. The suite runs this on
  // every backend and precision (MBVR_TEST_BACKEND=cuda on a GPU). The bound: logits here
  // reach 1/tau = 100, whose float32 rounding (100 x 6e-8) the small gradients inherit:
  // the CPU measures 0.4-3.4e-5 at fp32 (the 1e-5 of docs/math.md §5 is for unit-scale logits, README
  // "Accuracy"), so fp32 is held to 1e-4 - far below the errors of cancellation.
  it('confident soft-maxes (tau 0.01-0.02, near-duplicate positives) keep their small gradients', () => {
    const random = rng(suiteSeed + 404);
    const bound = Math.max(tolerance, 1e-4);
    for (const [B, D, corr, tau] of [[256, 128, 0.95, 0.02], [256, 128, 0.95, 0.01], [130, 72, 0.99, 0.01]] as const) {
      const c = randomCase(random, B, D, 2);
      for (const x of [c.fused, c.visual, c.text])
        for (let e = 0; e < x.length; e++) x[e] = corr * c.query[e] + Math.sqrt(1 - corr * corr) * x[e];
      const labels = Int32Array.from({ length: B }, (_, i) => i % (B - 7)); // a few duplicates
      const options: MbvrOptions = { ...base, temperature: tau, margin: 0.05, labels };
      const out = mbvrLossSync(c, options);
      const ref = referenceLoss(c as Parameters<typeof referenceLoss>[0], options);
      assert.ok(scalarError(out.loss, ref.loss) < bound, `B ${B} tau ${tau}: loss ${out.loss} vs ${ref.loss}`);
      for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) {
        const err = relativeError(out.grads[key]!, ref.grads[key]!);
        assert.ok(err < bound, `B ${B} tau ${tau}: grads.${key} relative error ${err.toExponential(2)}`);
      }
    }
  });

  it('refuses, rather than overflow, huge rows without normalisation', () => {
    const c = randomCase(rng(suiteSeed + 403), 8, 4, 1);
    const huge: MbvrInputs = { ...c, query: c.query.map((x) => x * 1e20), fused: c.fused.map((x) => x * 1e20) };
    assert.throws(() => mbvrLossSync(huge, { ...base, normalize: false }), (e: unknown) =>
      e instanceof RangeError && /query and fused/.test(e.message) && /normalize/.test(e.message));
    assertFinite(mbvrLossSync(huge, base), 'the same rows, normalized');
  });
});
