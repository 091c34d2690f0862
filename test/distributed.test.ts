// The data-parallel loss (docs/math.md §6) over an in-process communicator
// (test/local-comm.ts): P ranks, each holding its rows of a global batch, must together
// give exactly the single-process loss of the concatenated batch - every rank the same
// loss, terms and dL/dtau, and its rows of every gradient. Bad input or mismatched
// options on one rank reject on every rank, and the next call works. The same under real
// MPI: test/mpi-loss.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommData, Communicator } from '../src/communicator';
import { mbvrLoss, mbvrLossSync } from '../src/index';
import type { MbvrInputs, MbvrOptions, MbvrResult } from '../src/types';
import { GRAD_KEYS, randInt, randomCase, randomOptions, relativeError, rng, sameBits, scalarError, suiteSeed, type Case } from './helpers';
import { concat, randomSplit, shard } from './shards';
import { localGroup } from './local-comm';

async function runRanks(c: Case, options: MbvrOptions, rows: number[], comms: Communicator[] = localGroup(rows.length)) {
  return Promise.all(rows.map((_, r) => {
    const [inputs, o] = shard(c, options, rows, r);
    return mbvrLoss(inputs, { ...o, comm: comms[r] });
  }));
}

function compareJoined(results: MbvrResult[], single: MbvrResult, label: string, bound = 1e-5): void {
  for (const [r, out] of results.entries()) {
    // Every rank holds the same scalars, bit for bit.
    assert.equal(out.loss, results[0].loss, `${label}: rank ${r} loss`);
    assert.deepEqual(out.terms, results[0].terms, `${label}: rank ${r} terms`);
    assert.equal(out.grads.temperature, results[0].grads.temperature, `${label}: rank ${r} dL/dtau`);
  }
  const out = results[0];
  assert.ok(scalarError(out.loss, single.loss) <= bound, `${label}: loss ${out.loss} vs ${single.loss}`);
  for (const t of ['qm', 'mq', 'v', 't', 'ms'] as const)
    assert.ok(single.terms[t] === 0 ? out.terms[t] === 0 : scalarError(out.terms[t], single.terms[t]) <= bound, `${label}: terms.${t}`);
  const dtau = Math.abs(out.grads.temperature - single.grads.temperature) / Math.max(Math.abs(single.grads.temperature), 1e-3);
  assert.ok(dtau <= bound, `${label}: dL/dtau ${out.grads.temperature} vs ${single.grads.temperature}`);
  for (const key of GRAD_KEYS) {
    const whole = single.grads[key];
    const parts = results.map((r) => r.grads[key]);
    assert.equal(parts.every(Boolean), whole !== undefined, `${label}: grads.${key} presence`);
    if (!whole) continue;
    const err = relativeError(concat(parts as Float32Array[]), whole);
    assert.ok(err <= bound, `${label}: grads.${key} relative error ${err.toExponential(2)}`);
  }
}

describe('data-parallel loss over an in-process communicator', () => {
  it('equals the single-process loss of the concatenated batch (random shapes, options, splits)', async () => {
    const random = rng(suiteSeed + 1000);
    for (let trial = 0; trial < 24; trial++) {
      const size = randInt(random, 1, 4);
      const B = randInt(random, size === 1 ? 1 : 2, 160);
      const c = randomCase(random, B, randInt(random, 1, 48), randInt(random, 1, 3));
      const options = { ...randomOptions(random, B), backend: 'cpu' as const };
      // Each weight zero in turn, beside the random ones.
      if (trial % 6 < 3) options[(['alpha', 'beta', 'gamma'] as const)[trial % 3]] = 0;
      const rows = randomSplit(random, B, size);
      const results = await runRanks(c, options, rows);
      const single = mbvrLossSync(c, options);
      compareJoined(results, single, `trial ${trial} (${rows.join('+')} rows, ${JSON.stringify({ ...options, labels: !!options.labels, margin: typeof options.margin })})`);
    }
  });

  it('labels with duplicates on different ranks are masked across ranks', async () => {
    const random = rng(suiteSeed + 1001);
    const c = randomCase(random, 60, 16, 2);
    // Row i and row i + 30 are duplicates (one video: the same fused row), one on rank 0,
    // the other on rank 1 or 2.
    const labels = Int32Array.from({ length: 60 }, (_, i) => i % 30);
    for (let e = 0; e < 30 * 16; e++) c.fused[e] = c.query[e] + 0.3 * c.fused[e]; // positives near their queries
    for (let i = 30; i < 60; i++) c.fused.copyWithin(i * 16, (i - 30) * 16, (i - 29) * 16);
    const options: MbvrOptions = { labels, temperature: 0.01, margin: 0.1 };
    compareJoined(await runRanks(c, options, [25, 20, 15]), mbvrLossSync(c, options), 'duplicates across ranks');
    // Without masking the loss would differ (each duplicate a negative as close as the
    // positive): the test can tell.
    const unmasked = mbvrLossSync(c, { temperature: 0.01, margin: 0.1 });
    assert.ok(scalarError(unmasked.loss, mbvrLossSync(c, options).loss) > 0.05);
  });

  it('uneven shards and empty ranks work', async () => {
    const random = rng(suiteSeed + 1002);
    const c = randomCase(random, 33, 12, 2);
    const options: MbvrOptions = { temperature: 0.05, margin: Float32Array.from({ length: 33 }, () => random() * 0.3) };
    const single = mbvrLossSync(c, options);
    for (const rows of [[0, 33], [33, 0, 0], [0, 0, 33, 0], [1, 0, 31, 1], [11, 11, 11]])
      compareJoined(await runRanks(c, options, rows), single, `rows ${rows.join('+')}`);
  });

  it('with one rank it is the single-process computation, bit for bit', async () => {
    const random = rng(suiteSeed + 1003);
    const c = randomCase(random, 77, 20, 2);
    const options: MbvrOptions = { ...randomOptions(random, 77), backend: 'cpu' };
    const [one] = await runRanks(c, options, [77]);
    const single = mbvrLossSync(c, options);
    assert.equal(one.loss, single.loss);
    assert.deepEqual(one.terms, single.terms);
    assert.equal(one.grads.temperature, single.grads.temperature);
    for (const key of GRAD_KEYS) assert.ok(sameBits(one.grads[key]!, single.grads[key]!), `grads.${key}`);
  });

  it('mbvrLossSync takes a communicator with blocking collectives (comm.sync)', () => {
    const c = randomCase(rng(suiteSeed + 1004), 20, 8, 1);
    // One rank: every collective returns a copy of its input.
    const copy = <T extends CommData>(d: T): T => d.slice() as T;
    const single: Communicator = {
      rank: 0,
      size: 1,
      allGather: async (d) => copy(d),
      allReduce: async (d) => copy(d),
      reduceScatter: async (d) => copy(d),
      broadcast: async (d) => copy(d),
      barrier: async () => undefined,
      sync: { allGather: copy, allReduce: copy, reduceScatter: copy, broadcast: copy, barrier: () => undefined },
    };
    const out = mbvrLossSync(c, { comm: single });
    assert.equal(out.loss, mbvrLossSync(c).loss);
    const { sync: _sync, ...asyncOnly } = single;
    assert.throws(() => mbvrLossSync(c, { comm: asyncOnly }), (e: unknown) =>
      e instanceof TypeError && /Expected a Communicator with blocking collectives \(comm.sync, as mbvr\/mpi has\) in mbvrLossSync; or call mbvrLoss for comm/.test((e as Error).message));
  });
});

describe('data-parallel faults: every rank rejects, none hangs, the next call works', () => {
  const c = randomCase(rng(suiteSeed + 1010), 30, 8, 1);
  const rows = [10, 12, 8];

  async function settle(promises: Promise<MbvrResult>[]) {
    return Promise.allSettled(promises);
  }

  it('bad input on one rank: that rank its usual RangeError, the others an Error naming it', async () => {
    const comms = localGroup(3);
    const calls = rows.map((_, r) => {
      const [inputs, o] = shard(c, {}, rows, r);
      if (r === 1) (inputs.query as Float32Array)[7] = NaN;
      return mbvrLoss(inputs, { ...o, comm: comms[r] });
    });
    const settled = await settle(calls);
    const reasons = settled.map((s) => (s.status === 'rejected' ? (s.reason as Error) : undefined));
    assert.ok(reasons.every(Boolean), 'every rank rejects');
    assert.ok(reasons[1] instanceof RangeError);
    assert.equal(reasons[1]!.message, 'Expected finite numbers for query but received NaN at index 7');
    for (const r of [0, 2]) {
      assert.ok(!(reasons[r] instanceof RangeError) && !(reasons[r] instanceof TypeError));
      assert.equal(
        reasons[r]!.message,
        'mbvr: rank 1 rejected its input of the data-parallel loss: RangeError: Expected finite numbers for query but received NaN at index 7',
      );
    }
    // The next call on the same communicators works.
    compareJoined(await runRanks(c, {}, rows, comms), mbvrLossSync(c), 'after a rejected call');
  });

  const mismatches: Array<[string, (r: number) => MbvrOptions, RegExp]> = [
    ['temperature', (r) => ({ temperature: r === 2 ? 0.07 : 0.05 }), /^mbvr: the ranks disagree on temperature: rank 0 has 0.05, rank 2 has 0.07 /],
    ['alpha', (r) => ({ alpha: r === 1 ? 0.5 : 1 }), /disagree on alpha: rank 0 has 1, rank 1 has 0.5/],
    ['normalize', (r) => ({ normalize: r !== 0 }), /disagree on normalize: rank 0 has false, rank 1 has true/],
    ['precision', (r) => ({ precision: r === 1 ? 'bf16' : 'fp32' }), /disagree on precision: rank 0 has 'fp32', rank 1 has 'bf16'/],
    ['grads', (r) => ({ grads: r === 2 ? false : true }), /disagree on grads: rank 0 has true, rank 2 has false/],
  ];
  for (const [what, options, message] of mismatches)
    it(`mismatched ${what}: an Error naming the ranks and values on every rank`, async () => {
      const comms = localGroup(3);
      const settled = await settle(rows.map((_, r) => {
        const [inputs, o] = shard(c, {}, rows, r);
        return mbvrLoss(inputs, { ...o, ...options(r), comm: comms[r] });
      }));
      for (const [r, s] of settled.entries()) {
        assert.equal(s.status, 'rejected', `rank ${r}`);
        assert.match((s as PromiseRejectedResult).reason.message, message);
      }
      compareJoined(await runRanks(c, {}, rows, comms), mbvrLossSync(c), `after mismatched ${what}`);
    });

  it('mismatched dim and k are named too', async () => {
    const comms = localGroup(2);
    const a = randomCase(rng(1), 4, 8, 1), b = randomCase(rng(2), 4, 6, 2);
    const settled = await settle([mbvrLoss(a, { comm: comms[0] }), mbvrLoss(b, { comm: comms[1] })]);
    for (const s of settled) assert.match((s as PromiseRejectedResult).reason.message, /disagree on dim: rank 0 has 8, rank 1 has 6/);
    const k2 = randomCase(rng(3), 4, 8, 2);
    const comms2 = localGroup(2);
    const settled2 = await settle([mbvrLoss(a, { comm: comms2[0] }), mbvrLoss(k2, { comm: comms2[1] })]);
    for (const s of settled2) assert.match((s as PromiseRejectedResult).reason.message, /disagree on k \(shuffled rows per row\): rank 0 has 1, rank 1 has 2/);
  });

  it('a global batch of no rows, or backend cuda, is refused on every rank', async () => {
    const comms = localGroup(2);
    const empty = (): MbvrInputs => ({ batch: 0, dim: 4, query: new Float32Array(0), fused: new Float32Array(0), visual: new Float32Array(0), text: new Float32Array(0), shuffled: new Float32Array(0) });
    for (const s of await settle([mbvrLoss(empty(), { comm: comms[0] }), mbvrLoss(empty(), { comm: comms[1] })]))
      assert.match((s as PromiseRejectedResult).reason.message, /^Expected at least one row on some rank \(the global batch\) for batch but received 0 rows on every rank$/);
    const settled = await settle([mbvrLoss(c, { comm: comms[0], backend: 'cuda' }), mbvrLoss(c, { comm: comms[1] })]);
    assert.ok((settled[0] as PromiseRejectedResult).reason instanceof RangeError);
    assert.match((settled[1] as PromiseRejectedResult).reason.message, /rank 0 rejected its input .*for backend/);
  });
});
