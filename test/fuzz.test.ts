// Property-based tests (fast-check): over random shapes and options every call returns
// the oracle's answer, and over malformed inputs every call either returns a correct
// result or throws a TypeError / RangeError — never crashes, never a wrong answer.
// CI runs 10,000 cases; MBVR_FUZZ_RUNS=<n> runs more (n per property).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mbvrLossSync, referenceLoss } from '../src/index';
import type { MbvrInputs, MbvrOptions } from '../src/types';
import { suiteSeed } from './helpers';

const runs = Number(process.env.MBVR_FUZZ_RUNS ?? 5000);
// docs/math.md §5's 1e-5 is for unit-scale random rows (test/loss.test.ts holds the native code to
// it). Fuzzed rows may be all but zero, or sit at the 1e-12 normalisation clamp, where
// the problem itself is ill-conditioned: an fp32 logit |z| <= (1 + |margin|) / tau carries
// a rounding of |z| * 6e-8, and the softmax amplifies it by up to |z|. The bound below
// allows that much on top of 1e-4.
const TOL = 1e-4;
const FP32 = 6e-8;
function conditioning(options: MbvrOptions): number {
  const margin = options.margin instanceof Float32Array ? Math.max(0, ...Array.from(options.margin, Math.abs)) : Math.abs(options.margin ?? 0);
  const zmax = (1 + margin) / options.temperature!;
  return 50 * FP32 * zmax;
}

interface Config {
  batch: number;
  dim: number;
  k: number;
  data: { query: number[]; fused: number[]; visual: number[]; text: number[]; shuffled: number[] };
  options: MbvrOptions;
}

const value = fc.oneof(
  { weight: 8, arbitrary: fc.double({ min: -1, max: 1, noNaN: true }) },
  { weight: 1, arbitrary: fc.constant(0) },
);

const config: fc.Arbitrary<Config> = fc
  .record({ batch: fc.integer({ min: 1, max: 7 }), dim: fc.integer({ min: 1, max: 6 }), k: fc.integer({ min: 1, max: 3 }) })
  .chain(({ batch, dim, k }) =>
    fc.record({
      batch: fc.constant(batch),
      dim: fc.constant(dim),
      k: fc.constant(k),
      data: fc.record({
        query: fc.array(value, { minLength: batch * dim, maxLength: batch * dim }),
        fused: fc.array(value, { minLength: batch * dim, maxLength: batch * dim }),
        visual: fc.array(value, { minLength: batch * dim, maxLength: batch * dim }),
        text: fc.array(value, { minLength: batch * dim, maxLength: batch * dim }),
        shuffled: fc.array(value, { minLength: batch * k * dim, maxLength: batch * k * dim }),
      }),
      options: fc.record(
        {
          temperature: fc.double({ min: 0.01, max: 1, noNaN: true }),
          alpha: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true })),
          beta: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true })),
          gamma: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true })),
          margin: fc.oneof(
            fc.double({ min: -0.5, max: 0.5, noNaN: true }),
            fc.array(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { minLength: batch, maxLength: batch }).map((a) => Float32Array.from(a)),
          ),
          labels: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: batch, maxLength: batch }).map((a) => Int32Array.from(a)),
          normalize: fc.boolean(),
        },
        { requiredKeys: ['temperature'] },
      ),
    }),
  );

function inputsOf(c: Config): MbvrInputs {
  return {
    batch: c.batch,
    dim: c.dim,
    query: Float32Array.from(c.data.query),
    fused: Float32Array.from(c.data.fused),
    visual: Float32Array.from(c.data.visual),
    text: Float32Array.from(c.data.text),
    shuffled: Float32Array.from(c.data.shuffled),
  };
}

/** The native answer equals the oracle's (on the Float32 values actually passed). */
function checkAgainstOracle(inputs: MbvrInputs, options: MbvrOptions): void {
  const out = mbvrLossSync(inputs, { ...options, backend: 'cpu' });
  const asArrays = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [k, v instanceof Float32Array ? Float32Array.from(v) : v]),
  ) as Parameters<typeof referenceLoss>[0];
  const ref = referenceLoss(asArrays, options);
  const loss = Math.abs(out.loss - ref.loss) / Math.max(1, Math.abs(ref.loss));
  assert.ok(loss <= TOL + conditioning(options) && Number.isFinite(out.loss), `loss ${out.loss} vs ${ref.loss}`);
  for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) {
    const r = ref.grads[key];
    if (!r) continue;
    const o = out.grads![key]!;
    // Compared as ||x_i|| * dL/dx_i (rows clamped at 1e-12 use 1e-12): the gradient of a
    // row scales as 1 / ||x_i||, so near-zero rows would otherwise magnify fp32 rounding
    // of the normalised rows by up to 1e12. Norm-wise relative error, plus an absolute
    // allowance for fp32 logits (|z| up to 1/tau): entries 0 in float64 may be 1e-7 in
    // fp32 when a probability rounds to exactly 1.
    const x = inputs[key] as Float32Array;
    const D = inputs.dim as number;
    let diff = 0;
    let norm = 0;
    for (let row = 0; row < r.length / D; row++) {
      let ss = 0;
      for (let d = 0; d < D; d++) ss += x[row * D + d] ** 2;
      const scale = options.normalize === false ? 1 : Math.max(Math.sqrt(ss), 1e-12);
      for (let d = 0; d < D; d++) {
        const n = row * D + d;
        diff += ((o[n] - r[n]) * scale) ** 2;
        norm += (r[n] * scale) ** 2;
      }
    }
    const allowed = (TOL + conditioning(options)) * Math.sqrt(norm) + (1e-6 / options.temperature!) * Math.sqrt(r.length);
    const err = Math.sqrt(diff) / allowed;
    assert.ok(err <= 1, `grads.${key} error ${Math.sqrt(diff)} > allowed ${allowed}`);
  }
  // dL/dtau = -(1/tau) sum g * z over every logit: an fp32 rounding of |z| * 6e-8 in each
  // logit moves it by up to about |z|^2 * 6e-8 / tau per softmax term (4 of them), which
  // matters at tiny temperatures with near-degenerate rows (zeros, a margin, rows at the
  // 1e-12 clamp). Allowed: 1e-3 relative plus that.
  const margin = options.margin instanceof Float32Array ? Math.max(0, ...Array.from(options.margin, Math.abs)) : Math.abs(options.margin ?? 0);
  const zmax = (1 + margin) / options.temperature!;
  const dtauAllowed = 10 * TOL * Math.max(1, Math.abs(ref.grads.temperature)) + (4 * FP32 * zmax * zmax) / options.temperature!;
  const dtau = Math.abs(out.grads!.temperature - ref.grads.temperature);
  assert.ok(dtau <= dtauAllowed, `dtau ${out.grads!.temperature} vs ${ref.grads.temperature}`);
}

type Corruption = (inputs: MbvrInputs, options: MbvrOptions) => { inputs: unknown; options: unknown; valid: boolean };

const keys = ['query', 'fused', 'visual', 'text', 'shuffled'] as const;
const corruptions: Array<[string, fc.Arbitrary<Corruption>]> = [
  ['wrong type', fc.tuple(fc.constantFrom(...keys), fc.constantFrom<unknown>([], [1, 2], new Float64Array(4), new Int32Array(4), 'x', 3, null, {}, { data: [1] }, true)).map(
    ([key, bad]) => (i, o) => ({ inputs: { ...i, [key]: bad }, options: o, valid: false }))],
  ['wrong length', fc.tuple(fc.constantFrom(...keys), fc.constantFrom(-1, 1, 7)).map(
    ([key, delta]) => (i, o) => {
      const a = i[key] as Float32Array;
      const next = new Float32Array(Math.max(0, a.length + delta));
      next.set(a.subarray(0, Math.min(a.length, next.length)));
      return { inputs: { ...i, [key]: next }, options: o, valid: false };
    })],
  ['NaN or infinity', fc.tuple(fc.constantFrom(...keys), fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity)).map(
    ([key, at, bad]) => (i, o) => {
      const a = (i[key] as Float32Array).slice();
      a[at % a.length] = bad;
      return { inputs: { ...i, [key]: a }, options: o, valid: false };
    })],
  ['detached buffer', fc.constantFrom(...keys).map((key) => (i, o) => {
    const a = (i[key] as Float32Array).slice();
    structuredClone(a.buffer, { transfer: [a.buffer] });
    return { inputs: { ...i, [key]: a }, options: o, valid: false };
  })],
  ['SharedArrayBuffer-backed (valid)', fc.constantFrom(...keys).map((key) => (i, o) => {
    const a = i[key] as Float32Array;
    const shared = new Float32Array(new SharedArrayBuffer(a.byteLength));
    shared.set(a);
    return { inputs: { ...i, [key]: shared }, options: o, valid: true };
  })],
  ['subarray view with an offset (valid)', fc.tuple(fc.constantFrom(...keys), fc.integer({ min: 1, max: 9 })).map(
    ([key, offset]) => (i, o) => {
      const a = i[key] as Float32Array;
      const big = new Float32Array(a.length + offset + 3).fill(NaN); // garbage around the view
      big.set(a, offset);
      return { inputs: { ...i, [key]: big.subarray(offset, offset + a.length) }, options: o, valid: true };
    })],
  ['sizes whose byte counts overflow 32 bits', fc.constantFrom(2 ** 30, 2 ** 31, 2 ** 32 + 1, 2 ** 53 - 1).map(
    (batch) => (i, o) => ({ inputs: { ...i, batch }, options: o, valid: false }))],
  ['non-integer or non-positive sizes', fc.tuple(fc.constantFrom('batch', 'dim'), fc.constantFrom(0.5, 1.5, -1, 0, NaN, Infinity, '2', null)).map(
    ([key, bad]) => (i, o) => ({ inputs: { ...i, [key]: bad }, options: o, valid: false }))],
  ['null or undefined arguments', fc.constantFrom<[unknown, unknown]>([null, {}], [undefined, {}], ['inputs', null], [{}, null]).map(
    ([inputs, options]) => (i, o) => ({ inputs: inputs === 'inputs' ? i : inputs, options: options === null ? null : o, valid: false }))],
  ['bad options', fc.constantFrom<Record<string, unknown>>(
    { temperature: 0 }, { temperature: -1 }, { temperature: NaN }, { alpha: -0.1 }, { gamma: Infinity }, { margin: NaN },
    { margin: new Float32Array(1000) }, { labels: new Uint8Array(3) }, { labels: [1, 2] }, { backend: 'gpu' }, { precision: 1 },
    { threads: 0.5 }, { normalize: 'yes' }, { grads: 0 }).map((bad) => (i, o) => ({ inputs: i, options: { ...o, ...bad }, valid: false }))],
];

describe('fuzzing mbvrLossSync', () => {
  it(`matches the oracle on ${runs} random valid calls`, () => {
    fc.assert(
      fc.property(config, (c) => checkAgainstOracle(inputsOf(c), c.options)),
      { numRuns: runs, seed: suiteSeed },
    );
  });

  it(`returns a correct result or throws TypeError/RangeError on ${runs} malformed calls`, () => {
    const corruption = fc.oneof(...corruptions.map(([, arb]) => arb));
    fc.assert(
      fc.property(config, corruption, (c, corrupt) => {
        const { inputs, options, valid } = corrupt(inputsOf(c), c.options);
        let result: unknown;
        try {
          const withBackend = typeof options === 'object' && options !== null ? { ...options, backend: 'cpu' } : options;
          result = mbvrLossSync(inputs as MbvrInputs, withBackend as MbvrOptions);
        } catch (error) {
          assert.ok(error instanceof TypeError || error instanceof RangeError, `threw ${String(error)}`);
          assert.ok(!valid, `a valid call threw ${String(error)}`);
          return;
        }
        assert.ok(result);
        // Accepted: then it must be right (valid views, or an option that turned out fine).
        checkAgainstOracle(inputs as MbvrInputs, options as MbvrOptions);
      }),
      { numRuns: runs, seed: suiteSeed + 1 },
    );
  });
});
