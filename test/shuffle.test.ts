// modalityShuffle: K derangements, distinct in every row, each column a permutation, and
// the fewest same-label negatives the batch allows -- checked against optima computed
// here, independently of src/shuffle/: by brute force (B <= 6), by a min-cost flow over
// (row, negative) pairs (B <= 9), and by a lower bound from a min-cost flow between label
// groups (any B), which a result meeting it proves optimal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../src/random';
import { modalityShuffle } from '../src/shuffle';
import { dominantGroupNegatives } from '../src/shuffle/dominant';
import { exactNegatives } from '../src/shuffle/exact';
import { groupRows, type Negatives, randomOrder } from '../src/shuffle/groups';
import { shiftNegatives } from '../src/shuffle/shifts';
import { suiteSeed } from './helpers';

const runs = Number(process.env.MBVR_FUZZ_RUNS ?? 300);

// ---------------------------------------------------------------------------------------
// The checks every result must pass.

interface Counts {
  sameLabelNegatives: number;
  sameLabelRows: number;
}

/** Asserts pi is B x K, every column a permutation without fixed point, every row's K
 * negatives distinct; returns how many negatives (and rows) share the row's label. */
function checkStructure(pi: Int32Array, batch: number, k: number, labels?: Int32Array): Counts {
  assert.ok(pi instanceof Int32Array);
  assert.equal(pi.length, batch * k);
  const seen = new Int32Array(batch).fill(-1);
  for (let j = 0; j < k; j++)
    for (let i = 0; i < batch; i++) {
      const t = pi[i * k + j];
      assert.ok(t >= 0 && t < batch, `pi_${j}(${i}) = ${t} is a row`);
      assert.notEqual(t, i, `pi_${j}(${i}) is not the row itself`);
      assert.notEqual(seen[t], j, `pi_${j} takes ${t} twice: not a permutation`);
      seen[t] = j;
    }
  let sameLabelNegatives = 0;
  let sameLabelRows = 0;
  for (let i = 0; i < batch; i++) {
    const row = pi.subarray(i * k, i * k + k);
    assert.equal(new Set(row).size, k, `row ${i}'s negatives are distinct`);
    if (!labels) continue;
    let same = 0;
    for (const t of row) if (labels[t] === labels[i]) same++;
    sameLabelNegatives += same;
    if (same) sameLabelRows++;
  }
  return { sameLabelNegatives, sameLabelRows };
}

// ---------------------------------------------------------------------------------------
// Oracles.

/** Min-cost flow by successive shortest paths (Bellman-Ford): small networks only. */
function minCostFlow(nodes: number, arcs: [number, number, number, number][], source: number, sink: number): { flow: number; cost: number } {
  const to: number[] = [];
  const cap: number[] = [];
  const cost: number[] = [];
  const out: number[][] = Array.from({ length: nodes }, () => []);
  for (const [u, v, c, w] of arcs) {
    out[u].push(to.length);
    to.push(v), cap.push(c), cost.push(w);
    out[v].push(to.length);
    to.push(u), cap.push(0), cost.push(-w);
  }
  let flow = 0;
  let total = 0;
  for (;;) {
    const dist = new Array<number>(nodes).fill(Infinity);
    const via = new Array<number>(nodes).fill(-1);
    dist[source] = 0;
    for (let round = 0, changed = true; changed && round < nodes; round++) {
      changed = false;
      for (let u = 0; u < nodes; u++)
        if (dist[u] < Infinity)
          for (const e of out[u])
            if (cap[e] > 0 && dist[u] + cost[e] < dist[to[e]]) {
              dist[to[e]] = dist[u] + cost[e];
              via[to[e]] = e;
              changed = true;
            }
    }
    if (dist[sink] === Infinity) return { flow, cost: total };
    let push = Infinity;
    for (let v = sink; v !== source; v = to[via[v] ^ 1]) push = Math.min(push, cap[via[v]]);
    for (let v = sink; v !== source; v = to[via[v] ^ 1]) {
      cap[via[v]] -= push;
      cap[via[v] ^ 1] += push;
    }
    flow += push;
    total += push * dist[sink];
  }
}

/** Exact optimum: a K-regular bipartite graph row -> other row with the fewest same-label
 * edges (by Koenig's theorem it splits into K derangements with distinct rows). */
function rowLevelOptimum(labels: Int32Array, k: number): number {
  const B = labels.length;
  const [s, t] = [2 * B, 2 * B + 1];
  const arcs: [number, number, number, number][] = [];
  for (let i = 0; i < B; i++) {
    arcs.push([s, i, k, 0], [B + i, t, k, 0]);
    for (let j = 0; j < B; j++) if (j !== i) arcs.push([i, B + j, 1, labels[i] === labels[j] ? 1 : 0]);
  }
  const { flow, cost } = minCostFlow(2 * B + 2, arcs, s, t);
  assert.equal(flow, B * k);
  return cost;
}

/** A lower bound: the same problem between label groups, pair capacities n_a n_b (and
 * n_a (n_a - 1) inside a group). Rows of distinct labels, and beyond the 40 largest
 * groups the smaller ones, share one class whose inner edges are free: any true solution
 * is such a plan, so its cost is at least this. */
function groupLevelBound(labels: Int32Array, k: number): number {
  const count = new Map<number, number>();
  for (const l of labels) count.set(l, (count.get(l) ?? 0) + 1);
  const sizes = [...count.values()].filter((n) => n > 1).sort((a, b) => b - a).slice(0, 40);
  const pooled = labels.length - sizes.reduce((a, b) => a + b, 0);
  const classes = pooled ? [...sizes, pooled] : sizes;
  const C = classes.length;
  const [s, t] = [2 * C, 2 * C + 1];
  const arcs: [number, number, number, number][] = [];
  for (let a = 0; a < C; a++) {
    arcs.push([s, a, k * classes[a], 0], [C + a, t, k * classes[a], 0]);
    for (let b = 0; b < C; b++) {
      const pool = pooled > 0 && a === C - 1;
      if (a !== b) arcs.push([a, C + b, classes[a] * classes[b], 0]);
      else arcs.push([a, C + a, classes[a] * (classes[a] - 1), pool ? 0 : 1]);
    }
  }
  const { flow, cost } = minCostFlow(2 * C + 2, arcs, s, t);
  assert.equal(flow, labels.length * k);
  return cost;
}

/** Every K-tuple of derangements with distinct rows: the fewest same-label negatives. */
function bruteForce(labels: Int32Array, k: number): number {
  const B = labels.length;
  const derangements: number[][] = [];
  const build = (p: number[], used: boolean[]) => {
    if (p.length === B) return void derangements.push([...p]);
    for (let v = 0; v < B; v++)
      if (!used[v] && v !== p.length) {
        used[v] = true;
        p.push(v);
        build(p, used);
        p.pop();
        used[v] = false;
      }
  };
  build([], new Array(B).fill(false));
  const same = derangements.map((d) => d.filter((v, i) => labels[v] === labels[i]).length);
  let best = Infinity;
  const pick = (from: number, chosen: number[], cost: number) => {
    if (cost >= best) return;
    if (chosen.length === k) return void (best = cost);
    for (let c = from; c < derangements.length; c++) {
      const d = derangements[c];
      if (chosen.every((o) => derangements[o].every((v, i) => v !== d[i]))) pick(c + 1, [...chosen, c], cost + same[c]);
    }
  };
  pick(0, [], 0);
  return best;
}

// ---------------------------------------------------------------------------------------
// Random batches: sizes, K and a label structure, the rows placed at random.

const KINDS = ['none', 'distinct', 'equal', 'halves', 'huge', 'alphabet'] as const;
interface Case {
  batch: number;
  k: number;
  labels?: Int32Array;
  kind: (typeof KINDS)[number];
  seed: number;
}

function caseOf(maxBatch: number): fc.Arbitrary<Case> {
  return fc.integer({ min: 2, max: maxBatch }).chain((batch) =>
    fc
      .record({
        k: fc.integer({ min: 1, max: batch - 1 }),
        kind: fc.constantFrom(...KINDS),
        huge: fc.integer({ min: Math.ceil(batch / 2) - 1, max: batch }),
        values: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: 5, maxLength: 5 }),
        draws: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: batch, maxLength: batch }),
        seed: fc.maxSafeNat(),
      })
      .map(({ k, kind, huge, values, draws, seed }) => {
        const [a, b] = values[0] === values[1] ? [values[0], values[0] ^ 1] : values;
        const pick: Record<(typeof KINDS)[number], (i: number) => number> = {
          none: () => 0,
          distinct: (i) => (i * 2654435761) | 0, // distinct for i < 2^32
          equal: () => a,
          halves: (i) => (i < batch / 2 ? a : b),
          huge: (i) => (i < huge ? a : (i * 2654435761) | 0 || 1),
          alphabet: (i) => values[draws[i]],
        };
        let labels: Int32Array | undefined;
        if (kind !== 'none') {
          labels = Int32Array.from({ length: batch }, (_, i) => pick[kind](i));
          seededRandom(seed).shuffle(labels);
        }
        return { batch, k, labels, kind, seed };
      }),
  );
}

const describeCase = (c: Case) => `B ${c.batch}, K ${c.k}, ${c.kind}${c.labels ? ` [${Array.from(c.labels).join(', ')}]` : ''}, seed ${c.seed}`;

/** modalityShuffle on a case: structure, counts as reported, optimality, reproducibility. */
function checkCall(c: Case, optimum: (labels: Int32Array, k: number) => number): void {
  const before = c.labels?.slice();
  const pi = modalityShuffle(c.batch, { k: c.k, labels: c.labels, seed: c.seed });
  const counts = checkStructure(pi, c.batch, c.k, c.labels);
  assert.equal(pi.sameLabelNegatives, counts.sameLabelNegatives, 'sameLabelNegatives counts the result');
  assert.equal(pi.sameLabelRows, counts.sameLabelRows, 'sameLabelRows counts the result');
  assert.equal(pi.seed, c.seed);
  if (c.labels) assert.equal(counts.sameLabelNegatives, optimum(c.labels, c.k), `fewest same-label negatives (${describeCase(c)})`);
  assert.deepEqual(c.labels, before, 'labels are not modified');
  assert.deepEqual(modalityShuffle(c.batch, { k: c.k, labels: c.labels, seed: c.seed }), pi, 'same seed, same result');
}

describe('modalityShuffle', () => {
  it('the oracles agree: brute force = row-level flow = group-level bound on tiny batches', () => {
    fc.assert(
      fc.property(
        caseOf(6).filter((c) => c.labels !== undefined && c.k <= (c.batch === 6 ? 2 : 3)),
        (c) => {
          const exact = bruteForce(c.labels!, c.k);
          assert.equal(rowLevelOptimum(c.labels!, c.k), exact, describeCase(c));
          assert.equal(groupLevelBound(c.labels!, c.k), exact, describeCase(c));
        },
      ),
      { numRuns: Math.ceil(runs / 3), seed: suiteSeed },
    );
  });

  it('small batches: derangements, distinct rows, permutation columns, the exact optimum of same-label negatives', () => {
    fc.assert(fc.property(caseOf(9), (c) => checkCall(c, rowLevelOptimum)), { numRuns: runs, seed: suiteSeed });
  });

  it('larger batches: as above, meeting the group-level lower bound', () => {
    fc.assert(fc.property(caseOf(150), (c) => checkCall(c, groupLevelBound)), { numRuns: runs, seed: suiteSeed + 1 });
  });

  it('each construction on its own: shifts avoid every label; the dominant-group and general ones reach the optimum', () => {
    fc.assert(
      fc.property(caseOf(60).filter((c) => c.labels !== undefined), (c) => {
        const labels = c.labels!;
        const optimum = groupLevelBound(labels, c.k);
        const random = seededRandom(c.seed);
        const groups = groupRows(labels, random);
        // Each construction's result, and the counts it reports, checked against pi itself.
        const check = (what: string, n: Negatives, expected: number) => {
          const counts = checkStructure(n.pi, c.batch, c.k, labels);
          assert.deepEqual(counts, { sameLabelNegatives: n.sameLabelNegatives, sameLabelRows: n.sameLabelRows }, `${what} counts: ${describeCase(c)}`);
          assert.equal(counts.sameLabelNegatives, expected, `${what}: ${describeCase(c)}`);
        };
        if (c.k <= c.batch - 2 * groups.largest + 1) check('shifts', shiftNegatives(groups.order, c.k, groups.largest, random), 0);
        const dominant = groups.count > 1 ? dominantGroupNegatives(groups, c.k, random) : undefined;
        if (dominant) check('dominant', dominant, optimum);
        check('general', exactNegatives(groups, c.k, random), optimum);
      }),
      { numRuns: runs, seed: suiteSeed + 2 },
    );
  });

  it('avoids labels past B - 2g + 1: three negatives among two groups of three; two groups of B/2 with K = B/2', () => {
    const pi = modalityShuffle(6, { k: 3, labels: Int32Array.from([0, 0, 0, 1, 1, 1]), seed: suiteSeed });
    assert.equal(checkStructure(pi, 6, 3, Int32Array.from([0, 0, 0, 1, 1, 1])).sameLabelNegatives, 0);
    for (const batch of [10, 64, 1000]) {
      const labels = Int32Array.from({ length: batch }, (_, i) => i % 2);
      const k = batch / 2;
      assert.equal(checkStructure(modalityShuffle(batch, { k, labels, seed: suiteSeed }), batch, k, labels).sameLabelNegatives, 0);
    }
  });

  it('large batches, without labels and with every label structure (B = 100,000, K = 3)', () => {
    const batch = 100_000;
    const random = seededRandom(suiteSeed);
    const structures: [string, (i: number) => number][] = [
      ['distinct', (i) => i],
      ['pairs', (i) => i >> 1],
      ['halves', (i) => (i < batch / 2 ? 0 : 1)],
      ['0.6 B + distinct', (i) => (i < 0.6 * batch ? -1 : i)],
      ['B/2 - 1 + distinct', (i) => (i < batch / 2 - 1 ? -1 : i)],
      ['B/2 - 1, B/2 - 1, 2', (i) => (i < batch / 2 - 1 ? -1 : i < batch - 2 ? -2 : -3)],
      ['equal', () => 5],
    ];
    const plain = modalityShuffle(batch, { k: 3 });
    assert.equal(checkStructure(plain, batch, 3).sameLabelNegatives, 0);
    for (const [name, label] of structures) {
      const labels = Int32Array.from({ length: batch }, (_, i) => label(i));
      random.shuffle(labels);
      const pi = modalityShuffle(batch, { k: 3, labels });
      const counts = checkStructure(pi, batch, 3, labels);
      assert.equal(counts.sameLabelNegatives, groupLevelBound(labels, 3), name);
      assert.equal(pi.sameLabelNegatives, counts.sameLabelNegatives, name);
    }
  });

  it('groups rows by label exactly (every label its own contiguous group), and shuffles long ranges uniformly', () => {
    const random = seededRandom(suiteSeed + 3);
    const n = 1 << 18;
    for (const labels of [Int32Array.from({ length: n }, (_, i) => i - n / 2), Int32Array.from({ length: n }, () => random.uint32() | 0)]) {
      const groups = groupRows(labels, random);
      assert.equal(groups.count, new Set(labels).size, 'one group per distinct label');
      const seenLabels = new Set<number>();
      const rows = new Set<number>();
      for (let q = 0; q < groups.count; q++) {
        const label = labels[groups.order[groups.start[q]]];
        assert.ok(!seenLabels.has(label), `label ${label} in one group only`);
        seenLabels.add(label);
        for (let p = groups.start[q]; p < groups.start[q + 1]; p++) {
          assert.equal(labels[groups.order[p]], label);
          rows.add(groups.order[p]);
        }
      }
      assert.equal(rows.size, n, 'every row once');
    }
    // A long range (the bucket method): ascents and the rank correlation of a uniform
    // permutation, within 6 standard deviations.
    const order = randomOrder(n, random);
    let ascents = 0;
    let sum = 0;
    for (let i = 0; i + 1 < n; i++) if (order[i] < order[i + 1]) ascents++;
    for (let i = 0; i < n; i++) sum += (i / n - 0.5) * (order[i] / n - 0.5);
    assert.ok(Math.abs(ascents - (n - 1) / 2) < 6 * Math.sqrt((n + 1) / 12), `ascents ${ascents} of ${n - 1}`);
    assert.ok(Math.abs((12 * sum) / n) < 6 / Math.sqrt(n), `rank correlation ${(12 * sum) / n}`);
    assert.equal(new Set(order).size, n);
    // Any fixed set of elements lands all over: here every 1024th (256 of them).
    const position = new Int32Array(n);
    order.forEach((v, p) => (position[v] = p));
    const spots = Array.from({ length: n / 1024 }, (_, j) => position[j * 1024]);
    assert.ok(Math.max(...spots) - Math.min(...spots) > n / 2, 'every 1024th element spreads over the range');
  });

  it('without a seed every call draws afresh; the seed it reports replays it', () => {
    const labels = Int32Array.from({ length: 50 }, (_, i) => i % 7);
    const a = modalityShuffle(50, { k: 3, labels });
    const b = modalityShuffle(50, { k: 3, labels });
    assert.notEqual(a.seed, b.seed);
    assert.notDeepEqual(a, b);
    assert.deepEqual(modalityShuffle(50, { k: 3, labels, seed: a.seed }), a);
    assert.notDeepEqual(modalityShuffle(50, { seed: 1 }), modalityShuffle(50, { seed: 2 }));
    // Seeds past 2^32 are their own streams.
    assert.notDeepEqual(modalityShuffle(50, { seed: 2 ** 40 + 1 }), modalityShuffle(50, { seed: 1 }));
    // The extra properties are read-only and not enumerable (pi spreads and compares as an Int32Array).
    assert.deepEqual(Object.keys(a), Object.keys(new Int32Array(150)));
    for (const name of ['sameLabelRows', 'sameLabelNegatives', 'seed']) {
      const d = Object.getOwnPropertyDescriptor(a, name)!;
      assert.deepEqual([d.enumerable, d.writable, d.configurable], [false, false, false], name);
    }
    assert.equal(Reflect.set(a, 'sameLabelRows', 3), false);
  });

  it('rejects what it cannot do, naming the argument', () => {
    const throwsExactly = (fn: () => unknown, Kind: typeof Error, message: string) =>
      assert.throws(fn, (e: unknown) => e instanceof Kind && (e as Error).message === message);
    throwsExactly(() => modalityShuffle(5, { k: 5 }), RangeError, 'Expected at most 4 (batch - 1: K distinct negatives, none the row itself) for k but received 5 of type number');
    throwsExactly(() => modalityShuffle(2, { k: 2 }), RangeError, 'Expected at most 1 (batch - 1: K distinct negatives, none the row itself) for k but received 2 of type number');
    throwsExactly(() => modalityShuffle(1), RangeError, 'Expected at least 2 (a row cannot be its own shuffled negative) for batch but received 1 of type number');
    throwsExactly(() => modalityShuffle(4, { k: 0 }), RangeError, 'Expected a positive integer for k but received 0 of type number');
    throwsExactly(() => modalityShuffle(4, { seed: '1' as never }), TypeError, "Expected an integer for seed but received '1' of type string");
    throwsExactly(() => modalityShuffle(4, { labels: [0, 0, 1, 1] as never }), TypeError, 'Expected an Int32Array for labels but received Array');
    throwsExactly(() => modalityShuffle(4, null as never), TypeError, 'Expected an object for options but received null');
    throwsExactly(() => modalityShuffle(2 ** 20, { k: 2 ** 12 }), RangeError, 'Expected at most 4095 (batch * k entries must fit in one Int32Array) for k but received 4096 of type number');
  });
});
