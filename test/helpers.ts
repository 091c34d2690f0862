// Shared test helpers: seeded random inputs, relative errors, the backend under test.
import assert from 'node:assert/strict';
import { referenceLoss } from '../src/reference';
import { mulberry32 } from '../src/random';
import type { MbvrInputs, MbvrOptions, MbvrResult, Precision } from '../src/types';

/** The backend and precision the suite runs the native code with (GPU runs set these). */
export const backend = (process.env.MBVR_TEST_BACKEND ?? 'cpu') as 'cpu' | 'cuda';
export const precision = (process.env.MBVR_TEST_PRECISION ?? 'fp32') as Precision;
/** The relative error bound per precision (docs/math.md §5, README "Accuracy"). */
export const tolerance = { fp32: 1e-5, tf32: 2e-3, bf16: 2e-2 }[precision];

/** Fresh inputs every run; the seed is printed so a failure can be replayed. */
export const suiteSeed = Number(process.env.MBVR_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`# random seed ${suiteSeed} (replay with MBVR_TEST_SEED=${suiteSeed})`);

export type Random = () => number;

export const rng: (seed: number) => Random = mulberry32;

export function randInt(random: Random, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** Standard normal entries scaled by 1/sqrt(dim): rows of about unit norm. */
export function randomRows(random: Random, rows: number, dim: number): Float32Array {
  const out = new Float32Array(rows * dim);
  const scale = 1 / Math.sqrt(dim);
  for (let i = 0; i < out.length; i += 2) {
    const u = Math.max(random(), 1e-12);
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u)) * scale;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export interface Case {
  batch: number;
  dim: number;
  k: number;
  query: Float32Array;
  fused: Float32Array;
  visual: Float32Array;
  text: Float32Array;
  shuffled: Float32Array;
}

/** A random loss call's inputs; `k` is non-enumerable, so that the case passes as inputs
 * (the loss refuses unknown input names). */
export function randomCase(random: Random, batch: number, dim: number, k: number): Case {
  const c = {
    batch,
    dim,
    query: randomRows(random, batch, dim),
    fused: randomRows(random, batch, dim),
    visual: randomRows(random, batch, dim),
    text: randomRows(random, batch, dim),
    shuffled: randomRows(random, batch * k, dim),
  };
  return Object.defineProperty(c, 'k', { value: k, enumerable: false }) as Case;
}

/** Random options covering every switch: labels with duplicates, per-row margins, ... */
export function randomOptions(random: Random, batch: number): MbvrOptions {
  const options: MbvrOptions = {
    temperature: Math.exp(Math.log(0.01) + random() * Math.log(100)), // log-uniform in [0.01, 1]
    alpha: random() < 0.2 ? 0 : random() * 2,
    beta: random() < 0.2 ? 0 : random() * 2,
    gamma: random() < 0.2 ? 0 : random() * 2,
    normalize: random() < 0.75,
  };
  const m = random();
  if (m < 0.3) options.margin = random() * 0.5;
  else if (m < 0.6) options.margin = Float32Array.from({ length: batch }, () => random() * 0.5);
  if (random() < 0.5) {
    const ids = Math.max(1, Math.floor(batch * (0.3 + random() * 0.7)));
    options.labels = Int32Array.from({ length: batch }, () => randInt(random, 0, ids - 1));
  }
  return options;
}

/** ||out - ref|| / ||ref||; with `floor`, over max(||ref||, floor): a result whose parts
 * cancel to near 0 is then measured against the size of its parts. */
export function relativeError(out: ArrayLike<number>, ref: ArrayLike<number>, floor = 0): number {
  assert.equal(out.length, ref.length, 'lengths differ');
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (out[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  den = Math.max(den, floor * floor);
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

export function scalarError(out: number, ref: number): number {
  return Math.abs(out - ref) / Math.max(Math.abs(ref), 1e-30);
}

export function hasNonFinite(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return true;
  return false;
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** c(a_i, b_j) in float64: the cosine (rows clamped at 1e-12 like the addon), or the dot
 * product when normalize is false. */
export function cosineRef(a: Float32Array, ai: number, b: Float32Array, bj: number, dim: number, normalize = true): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let d = 0; d < dim; d++) {
    ab += a[ai * dim + d] * b[bj * dim + d];
    aa += a[ai * dim + d] ** 2;
    bb += b[bj * dim + d] ** 2;
  }
  return normalize ? ab / (Math.max(Math.sqrt(aa), 1e-12) * Math.max(Math.sqrt(bb), 1e-12)) : ab;
}

export const GRAD_KEYS = ['query', 'fused', 'visual', 'text', 'shuffled'] as const;

export function inputsOf(c: Case, options: MbvrOptions, random: () => number): MbvrInputs {
  const inputs: MbvrInputs = { batch: c.batch, dim: c.dim, query: c.query, fused: c.fused };
  // Inputs whose weight is 0 are sometimes omitted, sometimes given (then: zero gradient).
  if (options.alpha !== 0 || random() < 0.5) inputs.visual = c.visual;
  if (options.beta !== 0 || random() < 0.5) inputs.text = c.text;
  if (options.gamma !== 0 || random() < 0.5) inputs.shuffled = c.shuffled;
  return inputs;
}

/** Loss, terms and every gradient against the float64 reference, by relative error. */
export function compareToReference(
  out: MbvrResult,
  inputs: MbvrInputs,
  options: MbvrOptions,
  label: string,
  bound: number = tolerance,
  dtauFloor = 0,
): void {
  const ref = referenceLoss(inputs as Parameters<typeof referenceLoss>[0], options);
  assert.ok(scalarError(out.loss, ref.loss) <= bound, `${label}: loss ${out.loss} vs ${ref.loss}`);
  for (const term of ['qm', 'mq', 'v', 't', 'ms'] as const) {
    const err = ref.terms[term] === 0 ? Math.abs(out.terms[term]) : scalarError(out.terms[term], ref.terms[term]);
    assert.ok(err <= bound, `${label}: term ${term} ${out.terms[term]} vs ${ref.terms[term]}`);
  }
  assert.ok(out.grads, `${label}: grads missing`);
  for (const key of GRAD_KEYS) {
    const r = ref.grads[key];
    const o: Float32Array | undefined = out.grads[key];
    assert.equal(o === undefined, r === undefined, `${label}: grads.${key} presence`);
    if (!o || !r) continue;
    assert.ok(o instanceof Float32Array, `${label}: grads.${key} is a Float32Array`);
    const err = relativeError(o, r);
    assert.ok(err <= bound, `${label}: grads.${key} relative error ${err.toExponential(2)}`);
  }
  // dtauFloor: an absolute scale below which dL/dtau is compared absolutely (it is a sum
  // of terms of order |z| / tau that cancel; see test/cpu-bf16.test.ts).
  const errTau =
    Math.abs(out.grads.temperature - ref.grads.temperature) / Math.max(Math.abs(ref.grads.temperature), dtauFloor, 1e-30);
  assert.ok(errTau <= bound, `${label}: grads.temperature ${out.grads.temperature} vs ${ref.grads.temperature}`);
}
