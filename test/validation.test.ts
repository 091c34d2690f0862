// Bad input: a TypeError or RangeError naming the argument (exact wording asserted),
// from the TypeScript layer and from the binding when it is called directly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backends, mbvrLoss, mbvrLossSync, modalityShuffle, shuffledLogits, similarity } from '../src/index';
import { native } from '../src/native';
import type { MbvrInputs, MbvrOptions } from '../src/types';
import { randomCase, rng } from './helpers';

const B = 6;
const D = 4;
const c = randomCase(rng(7), B, D, 2);
const good = (): MbvrInputs => ({ ...c });

function throwsExactly(fn: () => unknown, Kind: typeof Error, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Kind, `expected ${Kind.name}, got ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
    assert.equal((error as Error).message, message);
    return true;
  });
}

const withNaN = (a: Float32Array, at: number, v = NaN) => {
  const b = a.slice();
  b[at] = v;
  return b;
};

interface BadCase {
  what: string;
  inputs?: () => unknown;
  options?: MbvrOptions | unknown;
  Kind: typeof Error;
  message: string;
}

const cases: BadCase[] = [
  { what: 'inputs not an object', inputs: () => 5, Kind: TypeError, message: 'Expected an object for inputs but received 5 of type number' },
  { what: 'a plain Array', inputs: () => ({ ...good(), query: Array.from(c.query) }), Kind: TypeError, message: 'Expected a Float32Array or a tensor { data, shape } for query but received Array' },
  { what: 'a Float64Array', inputs: () => ({ ...good(), fused: Float64Array.from(c.fused) }), Kind: TypeError, message: 'Expected a Float32Array or a tensor { data, shape } for fused but received Float64Array' },
  { what: 'a wrong length', inputs: () => ({ ...good(), visual: c.visual.subarray(1) }), Kind: RangeError, message: 'Expected a length of 24 (batch * dim) for visual but received length 23' },
  { what: 'null text', inputs: () => ({ ...good(), text: null }), Kind: TypeError, message: 'Expected a Float32Array or a tensor { data, shape } for text but received null' },
  { what: 'batch not whole', inputs: () => ({ ...good(), batch: 5.5 }), Kind: RangeError, message: 'Expected a positive integer for batch but received 5.5 of type number' },
  { what: 'batch missing', inputs: () => ({ ...good(), batch: undefined }), Kind: TypeError, message: 'Expected a positive integer for batch but received undefined' },
  { what: 'dim zero', inputs: () => ({ ...good(), dim: 0 }), Kind: RangeError, message: 'Expected a positive integer for dim but received 0 of type number' },
  { what: 'K not whole', inputs: () => ({ ...good(), shuffled: c.shuffled.subarray(0, 30) }), Kind: RangeError, message: 'Expected a length that is a whole multiple of 24 (batch * k * dim) for shuffled but received length 30' },
  { what: 'temperature 0', options: { temperature: 0 }, Kind: RangeError, message: 'Expected a finite number > 0 for temperature but received 0 of type number' },
  { what: 'temperature negative', options: { temperature: -0.1 }, Kind: RangeError, message: 'Expected a finite number > 0 for temperature but received -0.1 of type number' },
  { what: 'temperature NaN', options: { temperature: NaN }, Kind: RangeError, message: 'Expected a finite number > 0 for temperature but received NaN of type number' },
  { what: 'temperature a string', options: { temperature: '0.1' }, Kind: TypeError, message: "Expected a finite number > 0 for temperature but received '0.1' of type string" },
  { what: 'alpha negative', options: { alpha: -1 }, Kind: RangeError, message: 'Expected a finite number >= 0 for alpha but received -1 of type number' },
  { what: 'gamma infinite', options: { gamma: Infinity }, Kind: RangeError, message: 'Expected a finite number >= 0 for gamma but received Infinity of type number' },
  { what: 'margin of the wrong length', options: { margin: new Float32Array(B + 1) }, Kind: RangeError, message: 'Expected a length of 6 (batch) for margin but received length 7' },
  { what: 'margin an Array', options: { margin: [0.1] }, Kind: TypeError, message: 'Expected a number or a Float32Array of length batch for margin but received Array' },
  { what: 'labels of the wrong type', options: { labels: new Float32Array(B) }, Kind: TypeError, message: 'Expected an Int32Array for labels but received Float32Array' },
  { what: 'labels of the wrong length', options: { labels: new Int32Array(B - 1) }, Kind: RangeError, message: 'Expected a length of 6 (batch) for labels but received length 5' },
  { what: 'normalize not boolean', options: { normalize: 1 }, Kind: TypeError, message: 'Expected a boolean for normalize but received 1 of type number' },
  { what: 'unknown backend', options: { backend: 'tpu' }, Kind: RangeError, message: "Expected one of 'auto', 'cpu', 'cuda' for backend but received 'tpu'" },
  { what: 'unknown precision', options: { precision: 'fp16' }, Kind: RangeError, message: "Expected one of 'fp32', 'tf32', 'bf16' for precision but received 'fp16'" },
  { what: 'threads zero', options: { threads: 0 }, Kind: RangeError, message: 'Expected a positive integer for threads but received 0 of type number' },
  { what: 'logitCacheBytes negative', options: { logitCacheBytes: -1 }, Kind: RangeError, message: 'Expected a finite number >= 0 for logitCacheBytes but received -1 of type number' },
  { what: 'logitCacheBytes not whole', options: { logitCacheBytes: 1.5 }, Kind: RangeError, message: 'Expected a whole number of bytes >= 0 for logitCacheBytes but received 1.5 of type number' },
  { what: 'options not an object', options: 'fast', Kind: TypeError, message: "Expected an object for options but received 'fast' of type string" },
  { what: 'visual missing with alpha > 0', inputs: () => ({ ...good(), visual: undefined }), Kind: TypeError, message: 'Expected a Float32Array when alpha > 0 (pass alpha: 0 to drop L_v) for visual but received undefined' },
  { what: 'text missing with beta > 0', inputs: () => ({ ...good(), text: undefined }), options: { beta: 0.5 }, Kind: TypeError, message: 'Expected a Float32Array when beta > 0 (pass beta: 0 to drop L_t) for text but received undefined' },
  { what: 'shuffled missing with gamma > 0', inputs: () => ({ ...good(), shuffled: undefined }), Kind: TypeError, message: 'Expected a Float32Array when gamma > 0 (pass gamma: 0 to drop L_ms) for shuffled but received undefined' },
  { what: 'a tensor with a wrong shape', inputs: () => ({ ...good(), fused: { data: c.fused, shape: [D, B] } }), Kind: RangeError, message: 'Expected a last dimension of 4 (dim) for fused but received shape [4, 6]' },
  { what: 'a strided tensor', inputs: () => ({ ...good(), fused: { data: c.fused, shape: [B, D], stride: [1, B] } }), Kind: TypeError, message: 'Expected a contiguous row-major tensor for fused but received a strided view' },
  { what: 'a tensor whose data is a function but no dataSync', inputs: () => ({ ...good(), fused: { data: () => c.fused, shape: [B, D] } as never }), Kind: TypeError, message: 'Expected a Float32Array, or a function beside a dataSync() (a tf.Tensor) for fused.data but received a function' },
  { what: 'a tensor whose dataSync gives float64', inputs: () => ({ ...good(), fused: { data: () => undefined, dataSync: () => Float64Array.from(c.fused), shape: [B, D] } }), Kind: TypeError, message: 'Expected a Float32Array (float32 tensor) for fused.data but received Float64Array' },
  { what: 'shuffled as [k, batch, dim]', inputs: () => ({ ...good(), shuffled: { data: c.shuffled, shape: [c.k, B, D] } }), Kind: RangeError, message: `Expected shape [6, ${c.k}, 4] or [${6 * c.k}, 4] (batch, k, dim) for shuffled but received shape [${c.k}, 6, 4]` },
  // Checked natively (a scan over the data, off the event loop for mbvrLoss):
  { what: 'NaN in query', inputs: () => ({ ...good(), query: withNaN(c.query, 5) }), Kind: RangeError, message: 'Expected finite numbers for query but received NaN at index 5' },
  { what: 'Infinity in shuffled', inputs: () => ({ ...good(), shuffled: withNaN(c.shuffled, 40, Infinity) }), Kind: RangeError, message: 'Expected finite numbers for shuffled but received Infinity at index 40' },
  { what: 'NaN in a per-row margin', options: { margin: withNaN(new Float32Array(B), 2) }, Kind: RangeError, message: 'Expected finite numbers for margin but received NaN at index 2' },
  { what: 'tf32 on the cpu', options: { backend: 'cpu', precision: 'tf32' }, Kind: RangeError, message: "Expected 'fp32' or 'bf16' with backend 'cpu' (tf32 is CUDA-only) for precision but received 'tf32'" },
];

describe('bad input to mbvrLoss / mbvrLossSync', () => {
  for (const bad of cases) {
    it(`${bad.what} -> ${bad.Kind.name}`, async () => {
      const inputs = (bad.inputs ?? good)() as MbvrInputs;
      const options = (bad.options ?? { backend: 'cpu' }) as MbvrOptions;
      throwsExactly(() => mbvrLossSync(inputs, options), bad.Kind, bad.message);
      await assert.rejects(mbvrLoss(inputs, options), (error: unknown) => {
        assert.ok(error instanceof bad.Kind);
        assert.equal((error as Error).message, bad.message);
        return true;
      });
    });
  }

  it('asking for cuda without a usable GPU throws an Error with the reason', { skip: backends().cuda.available }, () => {
    const reason = backends().cuda.reason!;
    assert.ok(reason.length > 10);
    throwsExactly(() => mbvrLossSync(good(), { backend: 'cuda' }), Error, `The CUDA backend is unavailable: ${reason}`);
  });

  it('a detached buffer is refused, not read', () => {
    const query = c.query.slice();
    structuredClone(query.buffer, { transfer: [query.buffer] });
    assert.throws(() => mbvrLossSync({ ...good(), query }), RangeError);
    assert.throws(() => native().lossSync({ ...c, query, batch: B, dim: D }, {}), /detached|length/);
  });
});

describe('the binding re-checks what it is given when called directly (terse memory-safety errors)', () => {
  const n = native();
  const direct: Array<[string, () => unknown, typeof Error, RegExp]> = [
    ['no arguments', () => n.lossSync(undefined as never, undefined as never), TypeError, /^mbvr: batch: expected a number$/],
    ['an Array', () => n.lossSync({ batch: B, dim: D, query: [] as never, fused: c.fused }, {}), TypeError, /^mbvr: query: expected a Float32Array$/],
    ['a short array', () => n.lossSync({ batch: B, dim: D, query: c.query.subarray(2), fused: c.fused }, { alpha: 0, beta: 0, gamma: 0 }), RangeError, /^mbvr: query: length 22, expected 24$/],
    ['an oversized batch', () => n.lossSync({ batch: 2 ** 40, dim: D, query: c.query, fused: c.fused }, {}), RangeError, /^mbvr: query: length 24, expected 4398046511104$/],
    ['a batch beyond 2^53 elements', () => n.lossSync({ batch: 2 ** 50, dim: 2 ** 10, query: c.query, fused: c.fused }, {}), RangeError, /^mbvr: batch \* dim: too large$/],
    ['labels as Uint32Array', () => n.lossSync({ ...good(), batch: B, dim: D } as never, { labels: new Uint32Array(B) as never }), TypeError, /^mbvr: labels: expected an Int32Array$/],
    ['a bad option type', () => n.lossSync({ ...good(), batch: B, dim: D } as never, { temperature: '1' as never }), TypeError, /^mbvr: temperature: expected a number$/],
    ['similarity with short b', () => n.similarity(c.query, c.fused.subarray(1), { rows: B, cols: B, dim: D }), RangeError, /^mbvr: b: length 23, expected 24$/],
    ['shuffledLogits with a partial K', () => n.shuffledLogits(c.query, c.shuffled.subarray(1), { batch: B, dim: D }), RangeError, /whole multiple/],
  ];
  for (const [what, fn, Kind, pattern] of direct)
    it(`${what} -> ${Kind.name}`, () =>
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof Kind, `${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
        assert.match((e as Error).message, pattern);
        return true;
      }));
});

describe('bad input to the other functions', () => {
  it('similarity', () => {
    throwsExactly(() => similarity(c.query, c.fused, { rows: B, cols: B, dim: 5 }), RangeError, 'Expected a length of 30 (rows * dim) for a but received length 24');
    throwsExactly(() => similarity(c.query, 'b' as never, { rows: B, cols: B, dim: D }), TypeError, "Expected a Float32Array or a tensor { data, shape } for b but received 'b' of type string");
    throwsExactly(() => similarity(c.query, c.fused, { rows: B, cols: B, dim: D, temperature: -1 }), RangeError, 'Expected a finite number > 0 for temperature but received -1 of type number');
    const long = new Float32Array(70000).fill(1);
    throwsExactly(() => similarity(long, long, { rows: 70000, cols: 70000, dim: 1 }), RangeError,
      'Expected at most 4294967295 entries in all, what one Float32Array holds (for a large gallery, topK and retrievalMetrics stream it; or split the rows) for rows and cols but received 70000 x 70000 = 4900000000');
  });
  it('shuffledLogits', () => {
    throwsExactly(() => shuffledLogits(c.query, c.shuffled.subarray(3), { batch: B, dim: D }), RangeError, 'Expected a length of 24 (batch * k * dim, a whole multiple of batch * dim) for shuffled but received length 45');
  });
  it('modalityShuffle', () => {
    throwsExactly(() => modalityShuffle(1), RangeError, 'Expected at least 2 (a row cannot be its own shuffled negative) for batch but received 1 of type number');
    throwsExactly(() => modalityShuffle(4, { k: 1.5 }), RangeError, 'Expected a positive integer for k but received 1.5 of type number');
    throwsExactly(() => modalityShuffle(4, { labels: new Int32Array(3) }), RangeError, 'Expected a length of 4 (batch) for labels but received length 3');
    throwsExactly(() => modalityShuffle(4, { seed: 0.5 }), RangeError, 'Expected an integer for seed but received 0.5 of type number');
    throwsExactly(() => modalityShuffle(4, { k: 4 }), RangeError, 'Expected at most 3 (batch - 1: K distinct negatives, none the row itself) for k but received 4 of type number');
  });
});
