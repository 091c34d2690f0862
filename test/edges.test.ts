// No silent answer at the edges: every finite input gets the right result (as the
// float64 reference computes it) or a RangeError that names the argument responsible -
// on every function. Unknown option names are a TypeError that names them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  mbvrLoss,
  mbvrLossSync,
  modalityBalance,
  modalityShuffle,
  referenceLoss,
  retrievalMetrics,
  scoreSeparation,
  shuffledLogits,
  similarity,
  topK,
} from '../src/index';
import type { MbvrInputs, MbvrOptions } from '../src/types';
import { LOGIT_LIMIT } from '../src/defaults';
import { backend, compareToReference, GRAD_KEYS, hasNonFinite, precision, randInt, randomCase, relativeError, rng, scalarError, suiteSeed, tolerance } from './helpers';

function throwsExactly(fn: () => unknown, Kind: typeof Error, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Kind, `expected ${Kind.name}, got ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
    if (typeof message === 'string') assert.equal((error as Error).message, message);
    else assert.match((error as Error).message, message);
    return true;
  });
}

const F32_MAX = 3.4028234663852886e38;

/** Rows of an input scaled to the edges of float32: near its largest value, and tiny. */
function scaleRows(x: Float32Array, dim: number, random: () => number): void {
  const rows = x.length / dim;
  for (let i = 0; i < rows; i++) {
    const pick = random();
    if (pick > 0.3) continue;
    // Largest entry at F32_MAX, or entries of about 1e-35 (near the subnormals).
    let largest = 0;
    for (let d = 0; d < dim; d++) largest = Math.max(largest, Math.abs(x[i * dim + d]));
    const s = pick < 0.15 ? F32_MAX / largest : 1e-35 / largest;
    for (let d = 0; d < dim; d++) x[i * dim + d] = Math.fround(x[i * dim + d] * s);
  }
}

describe('finite values at the edges of float32 (normalize: true)', () => {
  it('rows near +-3.4e38 and near 1e-35 in every input give the reference result', () => {
    const random = rng(suiteSeed + 900);
    for (let trial = 0; trial < 4; trial++) {
      const c = randomCase(random, 40 + trial * 30, 24, 1 + (trial % 3));
      for (const x of [c.query, c.fused, c.visual, c.text]) scaleRows(x, c.dim, random);
      scaleRows(c.shuffled, c.dim, random);
      const options: MbvrOptions = { backend, precision, temperature: 0.07, margin: 0.1 };
      const out = mbvrLossSync(c, options);
      const ref = referenceLoss(c as Parameters<typeof referenceLoss>[0], options);
      assert.ok(Number.isFinite(out.loss), `trial ${trial}: loss ${out.loss}`);
      assert.ok(scalarError(out.loss, ref.loss) < tolerance, `trial ${trial}: loss ${out.loss} vs ${ref.loss}`);
      for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) {
        const g = out.grads[key]!;
        assert.ok(!hasNonFinite(g), `trial ${trial}: grads.${key} not finite`);
        // dL/dx scales as 1/||x||: compare ||x_i|| * dL/dx_i, so every row weighs alike -
        // but for rows whose gradient float32 can only hold as a subnormal (rows near
        // 3.4e38 have gradients near 1e-39, below 1.2e-38): those carry fewer digits than
        // 1e-5 asks, whoever computes them.
        const x = c[key];
        const r = ref.grads[key]!;
        const scaled = (v: ArrayLike<number>) => {
          const out64 = new Float64Array(v.length);
          for (let i = 0; i < v.length / c.dim; i++) {
            let n = 0, largest = 0;
            for (let d = 0; d < c.dim; d++) {
              n += x[i * c.dim + d] ** 2;
              largest = Math.max(largest, Math.abs(r[i * c.dim + d]));
            }
            if (largest < 1.2e-38 * 2 ** 10) continue;
            for (let d = 0; d < c.dim; d++) out64[i * c.dim + d] = v[i * c.dim + d] * Math.sqrt(n);
          }
          return out64;
        };
        const err = relativeError(scaled(g), scaled(r));
        // And SPEC's measure, on the arrays as they are.
        assert.ok(relativeError(g, r) < tolerance, `trial ${trial}: grads.${key} (unscaled) relative error`);
        assert.ok(err < tolerance, `trial ${trial}: grads.${key} relative error ${err.toExponential(2)}`);
      }
    }
  });

  it('similarity and shuffledLogits of rows near 3.4e38 are the cosines', () => {
    const a = Float32Array.from([F32_MAX, 0, 0, F32_MAX * 0.5, F32_MAX * 0.5, 0]);
    const s = similarity(a, a, { rows: 2, cols: 2, dim: 3, temperature: 1 });
    assert.deepEqual(Array.from(s).map((v) => Math.round(v * 1e6) / 1e6), [1, 0.707107, 0.707107, 1]);
    const z = shuffledLogits(a, a, { batch: 2, dim: 3, temperature: 1 });
    assert.deepEqual(Array.from(z).map((v) => Math.round(v * 1e6) / 1e6), [1, 1]);
  });
});

describe('settings whose results float32 cannot hold are a RangeError naming the argument', () => {
  const c = randomCase(rng(suiteSeed + 901), 8, 4, 1);
  const inputs = (): MbvrInputs => ({ ...c });
  const cases: Array<[string, MbvrOptions, RegExp]> = [
    ['temperature 1e-35', { temperature: 1e-35 }, /^Expected at least 0.0001 \(the logits \(\|cosine\| \+ \|margin\|\) \/ temperature must stay below 1e\+4, where float32 logits keep their accuracy in a soft-max\) for temperature but received 1e-35 of type number$/],
    ['temperature 1e-308', { temperature: 1e-308 }, /for temperature but received 1e-308 of type number$/],
    ['alpha 1e38', { alpha: 1e38 }, /^Expected at most .* \(heavier weights give gradients float32 cannot hold at this temperature\) for alpha but received 1e\+38 of type number$/],
    ['gamma 1e38', { gamma: 1e38 }, /for gamma but received 1e\+38 of type number$/],
    ['margin 1e38', { margin: 1e38 }, /^Expected \|margin\| at most 499 at this temperature \(the logits \(\|cosine\| \+ \|margin\|\) \/ temperature must stay below 1e\+4, where float32 logits keep their accuracy in a soft-max\) for margin but received 1.00e\+38 with temperature 0.05$/],
    ['margin -1e38', { margin: -1e38 }, /for margin but received 1.00e\+38 with temperature/],
    ['per-row margin 1e38', { margin: Float32Array.from({ length: 8 }, (_, i) => (i === 3 ? 1e38 : 0)) }, /for margin but received 1.00e\+38/],
    ['margin 1e38, normalize false: blames the margin, not the rows', { margin: 1e38, normalize: false }, /for margin but received/],
  ];
  for (const [what, options, message] of cases)
    it(what, async () => {
      throwsExactly(() => mbvrLossSync(inputs(), { backend, ...options }), RangeError, message);
      await assert.rejects(mbvrLoss(inputs(), { backend, ...options }), (e: unknown) => e instanceof RangeError && message.test((e as Error).message));
    });

  it('temperatures below 0.01, down to the logit limit (1e4), degrade gracefully; below it, a RangeError', () => {
    // The 1e-5 bound is for tau >= 0.01: a float32 logit carries an error of a few
    // 6e-8 · |z| (docs/math.md §4), which moves the soft-max of nearly tied entries.
    const random = rng(suiteSeed + 902);
    for (const temperature of [1e-3, 3e-4, 1.05e-4]) {
      const cs = randomCase(random, 24, 8, 2);
      const options: MbvrOptions = { backend, precision, temperature, labels: Int32Array.from({ length: 24 }, (_, i) => i % 20) };
      compareToReference(mbvrLossSync(cs, options), cs, options, `temperature ${temperature}`, 2e-4);
    }
    throwsExactly(() => mbvrLossSync(inputs(), { backend, temperature: 0.95e-4 }), RangeError,
      /^Expected at least 0\.0001 \(the logits \(\|cosine\| \+ \|margin\|\) \/ temperature must stay below 1e\+4, where float32 logits keep their accuracy in a soft-max\) for temperature but received 0\.000095 of type number$/);
    throwsExactly(() => mbvrLossSync(inputs(), { backend, temperature: 1e-2, margin: 1e3 }), RangeError, /for margin but received 1000 with temperature 0.01/);
    // similarity's logits are the result, not a soft-max's input: only float32's range bounds them
    assert.equal(similarity(c.query, c.fused, { rows: 8, cols: 8, dim: 4, temperature: 1e-20 }).length, 64);
  });

  it('each limit message names what goes over it: the margin with its bound, the rows with the margin, 1 / temperature', () => {
    throwsExactly(() => mbvrLossSync(inputs(), { backend, temperature: 2e-4, margin: 1.01 }), RangeError,
      /^Expected \|margin\| at most 1 at this temperature \(the logits .*\) for margin but received 1.01 with temperature 0.0002$/);
    const long = (x: Float32Array, by: number) => x.map((v) => v * by);
    throwsExactly(() => mbvrLossSync({ ...inputs(), query: long(c.query, 10), fused: long(c.fused, 10) }, { backend, temperature: 0.01, margin: 60, normalize: false }), RangeError,
      /^Expected rows whose dot products \(plus \|margin\|\) stay below .* for query and fused but received row norms up to .*, \|margin\| up to 60, with temperature 0.01$/);
    // Tiny rows keep the logits small while 1 / temperature overflows float32: refused, not Infinity.
    const tiny = { ...inputs(), query: long(c.query, 1e-20), fused: long(c.fused, 1e-20), visual: long(c.visual, 1e-20), text: long(c.text, 1e-20), shuffled: long(c.shuffled, 1e-20) };
    const message = /^Expected at least 1.00e-30 \(float32 must hold 1 \/ temperature\) for temperature but received 1e-39 of type number$/;
    throwsExactly(() => mbvrLossSync(tiny, { backend, temperature: 1e-39, normalize: false }), RangeError, message);
    throwsExactly(() => similarity(tiny.query, tiny.fused, { rows: 8, cols: 8, dim: 4, temperature: 1e-39, normalize: false }), RangeError, message);
    throwsExactly(() => shuffledLogits(tiny.query, tiny.shuffled, { batch: 8, dim: 4, temperature: 1e-39, normalize: false }), RangeError, message);
    const small = { ...tiny, query: long(c.query, 1e-15), fused: long(c.fused, 1e-15), visual: long(c.visual, 1e-15), text: long(c.text, 1e-15), shuffled: long(c.shuffled, 1e-15) };
    const options: MbvrOptions = { backend, precision, temperature: 1e-30, normalize: false };
    compareToReference(mbvrLossSync(small, options), small, options, 'rows of norm 1e-15 at temperature 1e-30', tolerance);
  });

  it('tied logits at the logit limit: the loss and gradients within 1e-3 of the float64 oracle', () => {
    // Rows at a few angles in one plane, random lengths: most cosines tie exactly or nearly,
    // the worst case for float32 logits (each rounding error moves a soft-max). Gradients
    // are compared all together (some inputs' own gradients vanish when rows are parallel),
    // against the larger of their size and the size of their parts: a row's parts are of
    // size 1 / (tau |row|), and where they cancel (saturated soft-maxes, tied rows) the
    // gradient is near 0 while float32 leaves errors of the parts' size (relative to the
    // gradient alone: up to 8e2, in 11 of 20,000 calls above 1e-3; against this scale the
    // worst of those 20,000 was 5.8e-4). dL/dtau likewise, against |z|max / tau. With the
    // limit at 1e6 this fails (errors of 3e-2).
    const random = rng(suiteSeed + 903);
    const angles = [0, 0.5, 1, 2];
    for (let trial = 0; trial < 24; trial++) {
      const batch = randInt(random, 2, 9), dim = randInt(random, 2, 4), k = randInt(random, 1, 2);
      const rows = (n: number) => {
        const a = new Float32Array(n * dim);
        for (let r = 0; r < n; r++) {
          const t = angles[randInt(random, 0, 3)], length = 0.5 + 2 * random();
          a[r * dim] = Math.cos(t) * length;
          a[r * dim + 1] = Math.sin(t) * length;
        }
        return a;
      };
      const cs: MbvrInputs = { batch, dim, query: rows(batch), fused: rows(batch), visual: rows(batch), text: rows(batch), shuffled: rows(batch * k) };
      const margin = trial % 2 ? 0.1 : 0;
      const temperature = (1 + margin) / LOGIT_LIMIT;
      const options: MbvrOptions = { backend, precision, temperature, margin };
      const out = mbvrLossSync(cs, options);
      const ref = referenceLoss(cs as Parameters<typeof referenceLoss>[0], options);
      const what = `tied, B=${batch} D=${dim} K=${k} margin ${margin}`;
      assert.ok(scalarError(out.loss, ref.loss) <= 1e-3, `${what}: loss ${out.loss} vs ${ref.loss}`);
      const all = (g: Partial<Record<(typeof GRAD_KEYS)[number], ArrayLike<number>>>) => GRAD_KEYS.flatMap((key) => Array.from(g[key]!));
      let parts = 0; // the squared size of the gradients' parts, 1 / (tau |row|) a row
      for (const key of GRAD_KEYS) {
        const x = cs[key] as Float32Array;
        for (let r = 0; r < x.length / dim; r++) {
          let norm2 = 0;
          for (let d = 0; d < dim; d++) norm2 += x[r * dim + d] ** 2;
          parts += 1 / (temperature ** 2 * norm2);
        }
      }
      const gradError = relativeError(Float64Array.from(all(out.grads)), Float64Array.from(all(ref.grads)), Math.sqrt(parts));
      assert.ok(gradError <= 1e-3, `${what}: gradients ${gradError.toExponential(2)}`);
      const tauError = Math.abs(out.grads.temperature - ref.grads.temperature) / (LOGIT_LIMIT / temperature);
      assert.ok(tauError <= 1e-3, `${what}: dL/dtau ${out.grads.temperature} vs ${ref.grads.temperature}`);
    }
  });

  it('rows whose dot products overflow without normalisation name the inputs', () => {
    const big = c.fused.map((v) => v * 1e20);
    throwsExactly(
      () => mbvrLossSync({ ...inputs(), fused: big, query: c.query.map((v) => v * 1e20) }, { backend, normalize: false }),
      RangeError,
      /^Expected rows whose dot products stay below 1e\+30 \(the logits \(\|dot product\| \+ \|margin\|\) \/ temperature must stay below 1e\+4, where float32 logits keep their accuracy in a soft-max\); pass normalize: true or rescale the rows for query and fused but received row norms up to/,
    );
    throwsExactly(
      () => similarity(big, big, { rows: 8, cols: 8, dim: 4, normalize: false }),
      RangeError,
      /for a and b but received row norms up to/,
    );
    throwsExactly(
      () => shuffledLogits(big, big, { batch: 8, dim: 4, normalize: false }),
      RangeError,
      /for query and shuffled but received row norms up to/,
    );
    throwsExactly(() => topK(big, big, { rows: 8, cols: 8, dim: 4, k: 2, normalize: false }), RangeError, /for queries and gallery but received/);
    throwsExactly(
      () => retrievalMetrics(big, big, { rows: 8, cols: 8, dim: 4, targets: new Int32Array(8), normalize: false }),
      RangeError,
      /for queries and gallery but received/,
    );
  });

  it('every function refuses NaN and infinity, naming the input and the index', () => {
    const nan = c.fused.slice();
    nan[5] = NaN;
    const inf = c.fused.slice();
    inf[2] = -Infinity;
    throwsExactly(() => similarity(c.query, nan, { rows: 8, cols: 8, dim: 4 }), RangeError, 'Expected finite numbers for b but received NaN at index 5');
    throwsExactly(() => shuffledLogits(inf, c.shuffled, { batch: 8, dim: 4 }), RangeError, 'Expected finite numbers for query but received -Infinity at index 2');
    throwsExactly(() => topK(c.query, nan, { rows: 8, cols: 8, dim: 4, k: 1 }), RangeError, 'Expected finite numbers for gallery but received NaN at index 5');
    throwsExactly(() => modalityBalance({ batch: 8, dim: 4, visual: inf, text: c.text, fused: c.fused }), RangeError, 'Expected finite numbers for visual but received -Infinity at index 2');
    throwsExactly(() => scoreSeparation({ batch: 8, dim: 4, query: c.query, fused: c.fused, shuffled: nan.subarray(0, 32) }), RangeError, 'Expected finite numbers for shuffled but received NaN at index 5');
  });
});

describe('argument names and kinds', () => {
  const c = randomCase(rng(suiteSeed + 902), 6, 4, 1);
  it('an unknown option is a TypeError that names it (and the likely intended one)', async () => {
    const message = "Expected one of the options temperature, alpha, beta, gamma, margin, labels, normalize, grads, backend, precision, threads, logitCacheBytes, comm (did you mean 'temperature'?) for options.temprature but received 5 of type number";
    throwsExactly(() => mbvrLossSync(c, { temprature: 5 } as never), TypeError, message);
    await assert.rejects(mbvrLoss(c, { temprature: 5 } as never), (e: unknown) => e instanceof TypeError && (e as Error).message === message);
    throwsExactly(() => mbvrLossSync(c, { Alpha: 1 } as never), TypeError, /\(did you mean 'alpha'\?\) for options.Alpha/);
    throwsExactly(() => mbvrLossSync(c, { foo: 1 } as never), TypeError, /^Expected one of the options .*comm for options.foo but received 1 of type number$/);
    throwsExactly(() => similarity(c.query, c.fused, { rows: 6, cols: 6, dim: 4, temprature: 1 } as never), TypeError, /for options.temprature/);
    throwsExactly(() => topK(c.query, c.fused, { rows: 6, cols: 6, dim: 4, k: 1, normalise: false } as never), TypeError, /\(did you mean 'normalize'\?\) for options.normalise/);
    const labels = Int32Array.of(0, 0, 1, 1, 2, 2);
    throwsExactly(() => modalityShuffle(6, { label: labels } as never), TypeError, /^Expected one of the options k, labels, seed \(did you mean 'labels'\?\) for options.label but received Int32Array/);
    throwsExactly(() => modalityShuffle(6, { K: 2 } as never), TypeError, /\(did you mean 'k'\?\) for options.K/);
    // An option explicitly undefined is the same as absent.
    assert.ok(Number.isFinite(mbvrLossSync(c, { temperature: undefined }).loss));
  });

  it('an unknown or misplaced input is a TypeError, on every function that takes inputs', () => {
    const plain = mbvrLossSync(c).loss;
    throwsExactly(
      () => mbvrLossSync({ ...c, temperature: 1 } as never),
      TypeError,
      'Expected one of the inputs batch, dim, query, fused, visual, text, shuffled (temperature belongs in options, the second argument) for inputs.temperature but received 1 of type number',
    );
    throwsExactly(() => mbvrLossSync({ ...c, labels: new Int32Array(6) } as never), TypeError, /\(labels belongs in options, the second argument\) for inputs.labels/);
    throwsExactly(() => mbvrLossSync({ ...c, visuals: c.visual } as never), TypeError, /\(did you mean 'visual'\?\) for inputs.visuals/);
    throwsExactly(() => mbvrLossSync(c, { query: c.query } as never), TypeError, /\(query belongs in inputs, the first argument\) for options.query/);
    throwsExactly(() => scoreSeparation({ ...c, margin: 0.1 } as never), TypeError, /for inputs.margin/);
    throwsExactly(() => modalityBalance({ ...c, fusedd: c.fused } as never), TypeError, /\(did you mean 'fused'\?\) for inputs.fusedd/);
    // A loss call's whole inputs object is accepted by the evaluations, and undefined is absent.
    assert.ok(Number.isFinite(scoreSeparation(c).auc) && modalityBalance(c).rvt.length === 6);
    assert.equal(mbvrLossSync({ ...c, note: undefined } as never).loss, plain);
  });

  it('getters are read once, before any check: a later read cannot slip a value past it', () => {
    let reads = 0;
    const q = c.query.slice();
    const options = {
      get normalize() {
        if (++reads === 2) q[0] = NaN; // a second read would poison the query after its check
        return true;
      },
    };
    const out = mbvrLossSync({ ...c, query: q }, options);
    assert.equal(reads, 1);
    assert.equal(out.loss, mbvrLossSync(c).loss);
  });

  it('a tensor of shuffled rows must be [batch, k, dim] or [batch * k, dim]', () => {
    const t = (shape: number[]) => ({ ...c, shuffled: { data: new Float32Array(6 * 2 * 4).fill(0.5), shape } });
    for (const shape of [[6, 2, 4], [12, 4], [48]]) assert.ok(Number.isFinite(mbvrLossSync(t(shape)).loss), String(shape));
    for (const shape of [[2, 6, 4], [6, 4, 2], [1, 1, 48], [1, 6, 2, 4]])
      throwsExactly(() => mbvrLossSync(t(shape)), RangeError, `Expected shape [6, 2, 4] or [12, 4] (batch, k, dim) for shuffled but received shape [${shape.join(', ')}]`);
    throwsExactly(() => scoreSeparation(t([2, 6, 4])), RangeError, /for shuffled but received shape \[2, 6, 4\]/);
  });

  it("a Proxy of a Float32Array is named as such, not V8's 'incompatible receiver'", () => {
    const proxy = new Proxy(c.query, {});
    throwsExactly(() => mbvrLossSync({ ...c, query: proxy }), TypeError, 'Expected a Float32Array or a tensor { data, shape } for query but received a Proxy of a Float32Array (pass the array itself)');
    throwsExactly(() => similarity(proxy, c.fused, { rows: 6, cols: 6, dim: 4 }), TypeError, /for a but received a Proxy of a Float32Array/);
  });

  it('logitCacheBytes takes any whole number of bytes, 2^60 included', () => {
    const a = mbvrLossSync(c, { logitCacheBytes: 2 ** 60 });
    const b = mbvrLossSync(c, { logitCacheBytes: 0 });
    assert.equal(a.loss, b.loss);
  });
});
