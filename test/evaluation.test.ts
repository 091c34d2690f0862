// modalityBalance, scoreSeparation, topK and retrievalMetrics against brute force on
// random data: ties (duplicated gallery rows, integer-valued rows whose dot products are
// exact), k > 1, targets anywhere, several gallery and query tiles, thread counts, and
// bad input with the exact error text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { modalityBalance, retrievalMetrics, scoreSeparation, topK } from '../src/index';
import { native } from '../src/native';
import { cosineRef, randInt, randomRows, type Random, rng, sameBits, suiteSeed } from './helpers';

// ---- brute force ----------------------------------------------------------------------

const cosine = (a: Float32Array, ai: number, b: Float32Array, bj: number, dim: number) => cosineRef(a, ai, b, bj, dim);

function dot(a: Float32Array, ai: number, b: Float32Array, bj: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += a[ai * dim + d] * b[bj * dim + d];
  return s;
}

/** Every score of query i, float64. */
function scoresOf(q: Float32Array, g: Float32Array, i: number, cols: number, dim: number, normalize: boolean): Float64Array {
  const s = new Float64Array(cols);
  for (let j = 0; j < cols; j++) s[j] = normalize ? cosine(q, i, g, j, dim) : dot(q, i, g, j, dim);
  return s;
}

/** Indices by score descending, ties to the lower index. */
function ranking(s: Float64Array): number[] {
  return Array.from(s.keys()).sort((a, b) => s[b] - s[a] || a - b);
}

function rankOf(s: Float64Array, t: number): number {
  let r = 1;
  for (let j = 0; j < s.length; j++) if (j !== t && (s[j] > s[t] || (s[j] === s[t] && j < t))) r++;
  return r;
}

/** numpy's default percentile: linear interpolation between closest ranks. */
function percentile(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  return lo + 1 >= sorted.length ? sorted[lo] : sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
}

/** Rows of small integers: every dot product is exact in float32, and ties are common. */
function integerRows(random: Random, rows: number, dim: number, range = 2): Float32Array {
  return Float32Array.from({ length: rows * dim }, () => randInt(random, -range, range));
}

/** A copy of g in which some rows repeat earlier ones (exact duplicates: tied scores). */
function withDuplicates(random: Random, g: Float32Array, cols: number, dim: number, share = 0.2): Float32Array {
  const out = g.slice();
  for (let j = 1; j < cols; j++)
    if (random() < share) {
      const src = randInt(random, 0, j - 1);
      out.copyWithin(j * dim, src * dim, (src + 1) * dim);
    }
  return out;
}

function throwsExactly(fn: () => unknown, Kind: typeof Error, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Kind, `expected ${Kind.name}, got ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
    assert.equal((error as Error).message, message);
    return true;
  });
}

// ---- topK ------------------------------------------------------------------------------

describe('topK', () => {
  it('equals the brute-force ranking exactly on integer rows (exact scores, many ties)', () => {
    const random = rng(suiteSeed + 500);
    for (let n = 0; n < 8; n++) {
      const rows = randInt(random, 1, 300);
      // Gallery tiles are 256 rows, packed 32 at a time: case 0 spans several blocks.
      const cols = n === 0 ? randInt(random, 8193, 20000) : randInt(random, 1, 2600);
      const dim = n === 0 ? randInt(random, 1, 4) : randInt(random, 1, 12);
      const k = randInt(random, 1, Math.min(cols, n % 2 ? 40 : 5));
      const q = integerRows(random, rows, dim);
      const g = withDuplicates(random, integerRows(random, cols, dim), cols, dim);
      const { indices, scores } = topK(q, g, { rows, cols, dim, k, normalize: false });
      assert.equal(indices.length, rows * k);
      for (let i = 0; i < rows; i++) {
        const s = scoresOf(q, g, i, cols, dim, false);
        const want = ranking(s).slice(0, k);
        assert.deepEqual(Array.from(indices.subarray(i * k, (i + 1) * k)), want, `case ${n} query ${i}`);
        assert.deepEqual(Array.from(scores.subarray(i * k, (i + 1) * k)), want.map((j) => s[j]));
      }
    }
  });

  it('returns the best cosines, best first, on random rows (normalized)', () => {
    const random = rng(suiteSeed + 501);
    const [rows, cols, dim, k] = [150, 2100, 32, 7];
    const q = randomRows(random, rows, dim);
    const g = randomRows(random, cols, dim);
    const { indices, scores } = topK(q, g, { rows, cols, dim, k });
    for (let i = 0; i < rows; i++) {
      const s = scoresOf(q, g, i, cols, dim, true);
      const kth = ranking(s)[k - 1];
      const got = Array.from(indices.subarray(i * k, (i + 1) * k));
      assert.equal(new Set(got).size, k, 'distinct indices');
      for (let r = 0; r < k; r++) {
        assert.ok(Math.abs(scores[i * k + r] - s[got[r]]) < 1e-5, 'score of the returned row');
        assert.ok(s[got[r]] >= s[kth] - 1e-5, 'among the k best up to rounding');
        if (r > 0) assert.ok(scores[i * k + r - 1] >= scores[i * k + r], 'best first');
      }
    }
  });

  it('puts exact duplicates together, lower index first', () => {
    const random = rng(suiteSeed + 502);
    const [rows, cols, dim] = [20, 1500, 16];
    const q = randomRows(random, rows, dim);
    const g = randomRows(random, cols, dim);
    // Row 1400 (second gallery tile) duplicates row 3; every query gets both or neither.
    g.copyWithin(1400 * dim, 3 * dim, 4 * dim);
    const { indices, scores } = topK(q, g, { rows, cols, dim, k: cols });
    for (let i = 0; i < rows; i++) {
      const row = Array.from(indices.subarray(i * cols, (i + 1) * cols));
      const a = row.indexOf(3);
      const b = row.indexOf(1400);
      if (scores[i * cols + a] === scores[i * cols + b]) assert.equal(b, a + 1);
      for (let r = 1; r < cols; r++) {
        const [s0, s1] = [scores[i * cols + r - 1], scores[i * cols + r]];
        assert.ok(s0 > s1 || (s0 === s1 && row[r - 1] < row[r]), 'score descending, then index ascending');
      }
    }
  });

  it('gives bit-identical results for any thread count', () => {
    const random = rng(suiteSeed + 503);
    // 36 gallery tiles: one block of 32 tiles and a rest, or (20 threads) one of 40.
    const [rows, cols, dim, k] = [400, 9000, 24, 9];
    const q = randomRows(random, rows, dim);
    const g = withDuplicates(random, randomRows(random, cols, dim), cols, dim);
    const one = topK(q, g, { rows, cols, dim, k, threads: 1 });
    for (const threads of [2, 3, 20]) {
      const other = topK(q, g, { rows, cols, dim, k, threads });
      assert.deepEqual(other.indices, one.indices, `threads ${threads}`);
      assert.ok(sameBits(other.scores, one.scores), `threads ${threads}`);
    }
  });

  it('reads sizes from tensor-likes and never modifies its inputs', () => {
    const random = rng(suiteSeed + 504);
    const q = randomRows(random, 6, 5);
    const g = randomRows(random, 11, 5);
    const [q0, g0] = [q.slice(), g.slice()];
    const plain = topK(q, g, { rows: 6, cols: 11, dim: 5, k: 4 });
    const tensors = topK({ data: q, shape: [6, 5] }, { data: g, dims: [11, 5] }, { k: 4 });
    assert.deepEqual(tensors, plain);
    assert.deepEqual(q, q0);
    assert.deepEqual(g, g0);
  });
});

// ---- retrievalMetrics ------------------------------------------------------------------

describe('retrievalMetrics', () => {
  it('ranks equal brute force exactly on integer rows, targets anywhere', () => {
    const random = rng(suiteSeed + 510);
    for (let n = 0; n < 8; n++) {
      const rows = randInt(random, 1, 300);
      const cols = n === 0 ? randInt(random, 8193, 20000) : randInt(random, 1, 2600);
      const dim = n === 0 ? randInt(random, 1, 4) : randInt(random, 1, 10);
      const q = integerRows(random, rows, dim);
      const g = withDuplicates(random, integerRows(random, cols, dim), cols, dim, 0.3);
      const targets = Int32Array.from({ length: rows }, (_, i) =>
        i === 0 ? 0 : i === 1 ? cols - 1 : randInt(random, 0, cols - 1),
      );
      const ks = [1, 3, 10, 100];
      const out = retrievalMetrics(q, g, { rows, cols, dim, targets, ks, normalize: false });
      const ref = Array.from({ length: rows }, (_, i) => rankOf(scoresOf(q, g, i, cols, dim, false), targets[i]));
      assert.deepEqual(Array.from(out.ranks), ref, `case ${n}`);
      for (const k of ks) assert.equal(out.recall[k], ref.filter((r) => r <= k).length / rows);
      const sorted = [...ref].sort((a, b) => a - b);
      assert.equal(out.medianRank, percentile(sorted, 0.5));
      assert.ok(Math.abs(out.meanRank - ref.reduce((a, b) => a + b, 0) / rows) < 1e-9);
    }
  });

  it('agrees with topK over the whole gallery, ties included (same arithmetic)', () => {
    const random = rng(suiteSeed + 511);
    const [rows, cols, dim] = [140, 2200, 24];
    const q = randomRows(random, rows, dim);
    const g = withDuplicates(random, randomRows(random, cols, dim), cols, dim, 0.25);
    const targets = Int32Array.from({ length: rows }, () => randInt(random, 0, cols - 1));
    const { indices } = topK(q, g, { rows, cols, dim, k: cols });
    const { ranks } = retrievalMetrics(q, g, { rows, cols, dim, targets });
    for (let i = 0; i < rows; i++) {
      const position = indices.subarray(i * cols, (i + 1) * cols).indexOf(targets[i]);
      assert.equal(ranks[i], position + 1, `query ${i}`);
    }
  });

  it('is within rounding of the float64 ranks on random rows', () => {
    const random = rng(suiteSeed + 512);
    const [rows, cols, dim] = [60, 1300, 20];
    const q = randomRows(random, rows, dim);
    const g = randomRows(random, cols, dim);
    const targets = Int32Array.from({ length: rows }, () => randInt(random, 0, cols - 1));
    const { ranks } = retrievalMetrics(q, g, { rows, cols, dim, targets });
    for (let i = 0; i < rows; i++) {
      const s = scoresOf(q, g, i, cols, dim, true);
      const st = s[targets[i]];
      let lo = 1;
      let hi = 1;
      for (let j = 0; j < cols; j++) {
        if (j === targets[i]) continue;
        if (s[j] > st + 1e-5) lo++;
        if (s[j] >= st - 1e-5) hi++;
      }
      assert.ok(ranks[i] >= lo && ranks[i] <= hi, `query ${i}: ${ranks[i]} not in [${lo}, ${hi}]`);
    }
  });

  it('counts a target tied with earlier duplicates behind them', () => {
    const dim = 3;
    const g = new Float32Array([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0]);
    const q = new Float32Array([0, 2, 0, 0, 2, 0, 0, 2, 0]);
    const out = retrievalMetrics(q, g, { rows: 3, cols: 5, dim, targets: new Int32Array([1, 2, 3]) });
    assert.deepEqual(Array.from(out.ranks), [1, 2, 3]);
    assert.deepEqual(out.recall, { 1: 1 / 3, 5: 1, 10: 1 });
    assert.equal(out.medianRank, 2);
    assert.equal(out.meanRank, 2);
  });

  it('gives identical ranks for any thread count', () => {
    const random = rng(suiteSeed + 513);
    const [rows, cols, dim] = [300, 9000, 16];
    const q = randomRows(random, rows, dim);
    const g = withDuplicates(random, randomRows(random, cols, dim), cols, dim);
    const targets = Int32Array.from({ length: rows }, () => randInt(random, 0, cols - 1));
    const one = retrievalMetrics(q, g, { rows, cols, dim, targets, threads: 1 });
    for (const threads of [2, 5, 20]) assert.deepEqual(retrievalMetrics(q, g, { rows, cols, dim, targets, threads }), one);
  });
});

// ---- modalityBalance and scoreSeparation ---------------------------------------------

describe('modalityBalance', () => {
  it('equals cos(v, m) / cos(t, m) in float64, with numpy-style percentiles', () => {
    const random = rng(suiteSeed + 520);
    const [batch, dim] = [257, 33];
    const visual = randomRows(random, batch, dim);
    const text = randomRows(random, batch, dim);
    const fused = randomRows(random, batch, dim);
    const copies = [visual.slice(), text.slice(), fused.slice()];
    const out = modalityBalance({ batch, dim, visual, text, fused });
    assert.deepEqual([visual, text, fused], copies, 'inputs unchanged');
    const ratios: number[] = [];
    for (let i = 0; i < batch; i++) {
      const cv = cosine(visual, i, fused, i, dim);
      const ct = cosine(text, i, fused, i, dim);
      assert.ok(Math.abs(out.cosVisual[i] - cv) < 1e-6);
      assert.ok(Math.abs(out.cosText[i] - ct) < 1e-6);
      assert.ok(Math.abs(out.rvt[i] - cv / ct) <= 1e-6 * Math.max(1, Math.abs(cv / ct)));
      ratios.push(cv / ct);
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
    assert.equal(out.summary.count, batch);
    assert.ok(close(out.summary.mean, ratios.reduce((a, b) => a + b, 0) / batch));
    assert.ok(close(out.summary.median, percentile(sorted, 0.5)));
    assert.ok(close(out.summary.p10, percentile(sorted, 0.1)));
    assert.ok(close(out.summary.p90, percentile(sorted, 0.9)));
  });

  it('leaves rows with cos(t, m) = 0 out of the summary (rvt NaN there), never NaN in it', () => {
    const fused = new Float32Array([1, 0, 1, 0, 0, 1, 1, 1]);
    const visual = new Float32Array([1, 0, 1, 1, 0, 1, 2, 0]);
    const text = new Float32Array([0, 1, 0, 0, 1, 1, 1, 0]); // row 0 orthogonal, row 1 zero
    const out = modalityBalance({ batch: 4, dim: 2, visual, text, fused });
    assert.ok(Number.isNaN(out.rvt[0]) && Number.isNaN(out.rvt[1]));
    assert.equal(out.summary.count, 2);
    assert.ok(Object.values(out.summary).every(Number.isFinite));
    const none = modalityBalance({ batch: 1, dim: 2, visual: visual.subarray(0, 2), text: text.subarray(0, 2), fused: fused.subarray(0, 2) });
    assert.deepEqual(none.summary, { mean: 0, median: 0, p10: 0, p90: 0, count: 0 });
  });

  it('reads batch and dim from a tensor-like fused', () => {
    const random = rng(suiteSeed + 521);
    const [v, t, m] = [randomRows(random, 4, 3), randomRows(random, 4, 3), randomRows(random, 4, 3)];
    assert.deepEqual(
      modalityBalance({ visual: v, text: t, fused: { data: m, shape: [4, 3] } }),
      modalityBalance({ batch: 4, dim: 3, visual: v, text: t, fused: m }),
    );
  });
});

describe('scoreSeparation', () => {
  it('equals the float64 cosines; auc counts ties 1/2 over the B x K pairs', () => {
    const random = rng(suiteSeed + 530);
    const [batch, dim, k] = [90, 17, 3];
    const query = randomRows(random, batch, dim);
    const fused = randomRows(random, batch, dim);
    const shuffled = randomRows(random, batch * k, dim);
    for (let i = 0; i < batch; i += 7) shuffled.set(fused.subarray(i * dim, (i + 1) * dim), (i * k + 1) * dim); // ties
    const out = scoreSeparation({ batch, dim, query, fused, shuffled });
    let wins = 0;
    for (let i = 0; i < batch; i++) {
      assert.ok(Math.abs(out.positive[i] - cosine(query, i, fused, i, dim)) < 1e-6);
      for (let j = 0; j < k; j++) {
        assert.ok(Math.abs(out.shuffled[i * k + j] - cosine(query, i, shuffled, i * k + j, dim)) < 1e-6);
        const [p, s] = [out.positive[i], out.shuffled[i * k + j]];
        wins += p > s ? 1 : p === s ? 0.5 : 0;
      }
      if (i % 7 === 0) assert.equal(out.shuffled[i * k + 1], out.positive[i], 'a duplicate ties exactly');
    }
    assert.equal(out.auc, wins / (batch * k));
  });
});

// ---- bad input ---------------------------------------------------------------------------

describe('evaluation: bad input', () => {
  const q = new Float32Array(6); // 2 x 3
  const g = Float32Array.from({ length: 15 }, (_, i) => i + 1); // 5 x 3
  const opts = { rows: 2, cols: 5, dim: 3 };
  const targets = new Int32Array([0, 4]);
  const mb = { batch: 2, dim: 2, visual: new Float32Array(4), text: new Float32Array(4), fused: new Float32Array(4) };

  const cases: [string, () => unknown, typeof Error, string][] = [
    ['topK: a plain Array', () => topK(Array.from(q) as never, g, { ...opts, k: 1 }), TypeError, 'Expected a Float32Array or a tensor { data, shape } for queries but received Array'],
    ['topK: k missing', () => topK(q, g, opts as never), TypeError, 'Expected a positive integer for k but received undefined'],
    ['topK: k zero', () => topK(q, g, { ...opts, k: 0 }), RangeError, 'Expected a positive integer for k but received 0 of type number'],
    ['topK: k > cols', () => topK(q, g, { ...opts, k: 6 }), RangeError, 'Expected an integer between 1 and cols (5) for k but received 6 of type number'],
    ['topK: gallery length', () => topK(q, g.subarray(1), { ...opts, k: 1 }), RangeError, 'Expected a length of 15 (cols * dim) for gallery but received length 14'],
    ['topK: NaN in gallery', () => topK(q, Object.assign(g.slice(), { 3: NaN }), { ...opts, k: 1 }), RangeError, 'Expected finite numbers for gallery but received NaN at index 3'],
    ['topK: infinity in queries', () => topK(Object.assign(q.slice(), { 5: -Infinity }), g, { ...opts, k: 1 }), RangeError, 'Expected finite numbers for queries but received -Infinity at index 5'],
    ['topK: options missing', () => topK(q, g, undefined as never), TypeError, 'Expected an object for options but received undefined'],
    ['topK: rows missing', () => topK(q, g, { cols: 5, dim: 3, k: 1 }), TypeError, 'Expected a positive integer for rows but received undefined'],
    ['topK: normalize a number', () => topK(q, g, { ...opts, k: 1, normalize: 1 as never }), TypeError, 'Expected a boolean for normalize but received 1 of type number'],
    ['topK: threads zero', () => topK(q, g, { ...opts, k: 1, threads: 0 }), RangeError, 'Expected a positive integer for threads but received 0 of type number'],
    ['retrievalMetrics: targets missing', () => retrievalMetrics(q, g, opts as never), TypeError, 'Expected an Int32Array for targets but received undefined'],
    ['retrievalMetrics: targets Float32Array', () => retrievalMetrics(q, g, { ...opts, targets: new Float32Array(2) as never }), TypeError, 'Expected an Int32Array for targets but received Float32Array'],
    ['retrievalMetrics: targets length', () => retrievalMetrics(q, g, { ...opts, targets: new Int32Array(3) }), RangeError, 'Expected a length of 2 (rows) for targets but received length 3'],
    ['retrievalMetrics: target out of range', () => retrievalMetrics(q, g, { ...opts, targets: new Int32Array([0, 5]) }), RangeError, 'Expected gallery rows in [0, 5) (cols) for targets but received 5 at index 1'],
    ['retrievalMetrics: negative target', () => retrievalMetrics(q, g, { ...opts, targets: new Int32Array([-1, 0]) }), RangeError, 'Expected gallery rows in [0, 5) (cols) for targets but received -1 at index 0'],
    ['retrievalMetrics: ks not an array', () => retrievalMetrics(q, g, { ...opts, targets, ks: 5 as never }), TypeError, 'Expected an Array of positive integers for ks but received 5 of type number'],
    ['retrievalMetrics: ks entry 0', () => retrievalMetrics(q, g, { ...opts, targets, ks: [1, 0] }), RangeError, 'Expected a positive integer for ks[1] but received 0 of type number'],
    ['retrievalMetrics: ks entry 2.5', () => retrievalMetrics(q, g, { ...opts, targets, ks: [2.5] }), RangeError, 'Expected a positive integer for ks[0] but received 2.5 of type number'],
    ['modalityBalance: inputs not an object', () => modalityBalance(3 as never), TypeError, 'Expected an object for inputs but received 3 of type number'],
    ['modalityBalance: text missing', () => modalityBalance({ ...mb, text: undefined as never }), TypeError, 'Expected a Float32Array or a tensor { data, shape } for text but received undefined'],
    ['modalityBalance: visual length', () => modalityBalance({ ...mb, visual: new Float32Array(5) }), RangeError, 'Expected a length of 4 (batch * dim) for visual but received length 5'],
    ['modalityBalance: infinity in fused', () => modalityBalance({ ...mb, fused: new Float32Array([0, 0, Infinity, 0]) }), RangeError, 'Expected finite numbers for fused but received Infinity at index 2'],
    ['modalityBalance: batch 1.5', () => modalityBalance({ ...mb, batch: 1.5 }), RangeError, 'Expected a positive integer for batch but received 1.5 of type number'],
    ['scoreSeparation: K not whole', () => scoreSeparation({ batch: 2, dim: 2, query: new Float32Array(4), fused: new Float32Array(4), shuffled: new Float32Array(6) }), RangeError, 'Expected a length that is a whole multiple of 4 (batch * k * dim) for shuffled but received length 6'],
    ['scoreSeparation: shuffled a Float64Array', () => scoreSeparation({ batch: 2, dim: 2, query: new Float32Array(4), fused: new Float32Array(4), shuffled: new Float64Array(4) as never }), TypeError, 'Expected a Float32Array or a tensor { data, shape } for shuffled but received Float64Array'],
  ];
  for (const [what, fn, Kind, message] of cases) it(what, () => throwsExactly(fn, Kind, message));

  // The binding re-checks kinds and sizes when called directly, bypassing src/ (terse
  // memory-safety messages: the wording users read is src/'s).
  const raw = native() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const direct: [string, () => unknown, typeof Error, string][] = [
    ['native topK: short queries', () => raw.topK(q.subarray(1), g, { ...opts, k: 1 }), RangeError, 'mbvr: queries: length 5, expected 6'],
    ['native topK: k > cols', () => raw.topK(q, g, { ...opts, k: 9 }), RangeError, 'mbvr: k: must be in [1, cols]'],
    ['native retrievalMetrics: targets length', () => raw.retrievalMetrics(q, g, { ...opts, targets: new Int32Array(1) }), RangeError, 'mbvr: targets: length 1, expected 2'],
    ['native retrievalMetrics: target out of range', () => raw.retrievalMetrics(q, g, { ...opts, targets: new Int32Array([7, 0]) }), RangeError, 'mbvr: targets: index 0 is outside [0, cols)'],
    ['native scoreSeparation: K not whole', () => raw.scoreSeparation({ batch: 2, dim: 2, query: new Float32Array(4), fused: new Float32Array(4), shuffled: new Float32Array(3) }), RangeError, 'mbvr: shuffled: length must be a whole multiple of batch * dim'],
    ['native modalityBalance: a plain Array', () => raw.modalityBalance({ ...mb, visual: [0, 0, 0, 0] }), TypeError, 'mbvr: visual: expected a Float32Array'],
  ];
  for (const [what, fn, Kind, message] of direct) it(what, () => throwsExactly(fn, Kind, message));
});
