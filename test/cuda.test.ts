// The CUDA backend's JavaScript surface. Without a usable GPU: every entry point throws
// an Error carrying the reason, and 'auto' runs on the CPU. With one (the GPU machine's
// scripts/gpu-check.sh): the device-resident session against the host path and the
// float64 reference, and out-of-memory as an Error the process survives.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backends, CudaSession, CudaTensor, mbvrLossSync, referenceLoss } from '../src/index';
import type { Precision } from '../src/types';
import { randomCase, relativeError, rng, scalarError, suiteSeed } from './helpers';

const info = backends().cuda;
const noGpu = info.available ? false : `no usable GPU: ${info.reason}`;

describe('CUDA without a usable GPU', { skip: info.available }, () => {
  const unavailable = `The CUDA backend is unavailable: ${info.reason}`;
  it("reports why, and 'auto' uses the CPU", () => {
    assert.equal(info.available, false);
    assert.ok(info.reason && info.reason.length > 10);
    const c = randomCase(rng(suiteSeed + 500), 8, 4, 1);
    assert.equal(mbvrLossSync(c, { backend: 'auto' }).backend, 'cpu');
    assert.equal(mbvrLossSync(c).backend, 'cpu');
  });
  it('the device-resident API throws an Error with the reason', () => {
    assert.throws(() => new CudaSession(), (e: unknown) => e instanceof Error && (e as Error).message === unavailable);
    assert.throws(() => CudaTensor.from(new Float32Array(4), { rows: 2, dim: 2 }), (e: unknown) => (e as Error).message === unavailable);
    assert.throws(() => CudaTensor.zeros(2, 2), (e: unknown) => (e as Error).message === unavailable);
  });
});

describe('CUDA on a GPU', { skip: noGpu }, () => {
  const tolerance: Record<Precision, number> = { fp32: 1e-5, tf32: 2e-3, bf16: 2e-2 };
  for (const precision of ['fp32', 'tf32', 'bf16'] as const) {
    it(`device-resident session (${precision}) equals the host path and the reference`, async () => {
      const c = randomCase(rng(suiteSeed + 501), 300, 64, 2);
      const labels = Int32Array.from({ length: 300 }, (_, i) => i % 120);
      const options = { temperature: 0.05, margin: 0.1, labels, precision };
      const session = new CudaSession();
      const t = {
        query: CudaTensor.from(c.query, { rows: 300, dim: 64 }),
        fused: CudaTensor.from(c.fused, { rows: 300, dim: 64 }),
        visual: CudaTensor.from(c.visual, { rows: 300, dim: 64 }),
        text: CudaTensor.from(c.text, { rows: 300, dim: 64 }),
        shuffled: CudaTensor.from(c.shuffled, { rows: 600, dim: 64 }),
      };
      const device = await session.loss(t, options);
      const host = mbvrLossSync(c, { ...options, backend: 'cuda' });
      const ref = referenceLoss(c, options);
      assert.equal(host.backend, 'cuda');
      assert.ok(scalarError(device.loss, ref.loss) < tolerance[precision]);
      assert.ok(scalarError(host.loss, ref.loss) < tolerance[precision]);
      for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) {
        const g = device.grads![key]!.download();
        assert.ok(relativeError(g, ref.grads[key]!) < tolerance[precision], `device grads.${key}`);
        assert.ok(relativeError(host.grads![key]!, ref.grads[key]!) < tolerance[precision], `host grads.${key}`);
      }
      // Re-upload in place and compute again: same memory, new values.
      t.query.upload(c.fused);
      const again = session.lossSync({ ...t }, options);
      assert.ok(Number.isFinite(again.loss) && again.loss !== device.loss);
      session.dispose();
      for (const x of Object.values(t)) x.dispose();
    });
  }

  // The case the earlier tiles (positives inside their log-sum-exp) got 0.2-0.4 wrong;
  // test/numerics.test.ts runs the same on the host path with MBVR_TEST_BACKEND=cuda.
  for (const precision of ['fp32', 'tf32', 'bf16'] as const) {
    it(`confident soft-maxes on the device session (${precision}, tau 0.02, near-duplicate positives)`, () => {
      const B = 256, D = 128;
      const c = randomCase(rng(suiteSeed + 503), B, D, 1);
      for (const x of [c.fused, c.visual, c.text]) for (let e = 0; e < x.length; e++) x[e] = 0.95 * c.query[e] + 0.31 * x[e];
      const options = { temperature: 0.02, precision };
      const session = new CudaSession();
      const t = Object.fromEntries(
        (['query', 'fused', 'visual', 'text', 'shuffled'] as const).map((k) => [k, CudaTensor.from(c[k], { rows: B, dim: D })]),
      ) as unknown as Parameters<CudaSession['lossSync']>[0];
      const out = session.lossSync(t, options);
      const ref = referenceLoss(c, options);
      const bound = Math.max(tolerance[precision], 1e-4);
      assert.ok(scalarError(out.loss, ref.loss) < bound);
      for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const)
        assert.ok(relativeError(out.grads![key]!.download(), ref.grads[key]!) < bound, `grads.${key}`);
      session.dispose();
    });
  }

  it('GPU out of memory is an Error, and the next call works', () => {
    assert.throws(() => CudaTensor.zeros(2 ** 31, 1024), (e: unknown) => e instanceof Error && /GPU out of memory/.test((e as Error).message));
    const c = randomCase(rng(suiteSeed + 502), 64, 16, 1);
    assert.equal(mbvrLossSync(c, { backend: 'cuda' }).backend, 'cuda');
  });
});
