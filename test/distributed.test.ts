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

  it('0 and -0 are the same weight on every rank; a margin out of range on one rank is that rank\'s RangeError', async () => {
    const comms = localGroup(3);
    const zero = await runRanks(c, {}, rows, comms); // warm: the next calls use these comms
    compareJoined(zero, mbvrLossSync(c), 'plain');
    const signs = await Promise.all(rows.map((_, r) => {
      const [inputs, o] = shard(c, { alpha: 0 }, rows, r);
      return mbvrLoss(inputs, { ...o, alpha: r === 1 ? -0 : 0, comm: comms[r] });
    }));
    compareJoined(signs, mbvrLossSync(c, { alpha: 0 }), 'alpha 0 and -0');
    const settled = await settle(rows.map((_, r) => {
      const [inputs, o] = shard(c, {}, rows, r);
      return mbvrLoss(inputs, { ...o, margin: r === 1 ? 2e8 : 0.1, comm: comms[r] });
    }));
    const reasons = settled.map((x) => (x as PromiseRejectedResult).reason as Error);
    assert.ok(reasons[1] instanceof RangeError && /for margin but received 2.00e\+8/.test(reasons[1].message), String(reasons[1]));
    for (const r of [0, 2]) assert.match(reasons[r].message, /^mbvr: rank 1 rejected its input of the data-parallel loss: RangeError: .*for margin/);
  });

  it('values fine on each rank but over a limit together: a RangeError on every rank, saying whose', async () => {
    const comms = localGroup(2);
    const [a, b] = [randomCase(rng(suiteSeed + 1011), 4, 8, 1), randomCase(rng(suiteSeed + 1012), 4, 8, 1)];
    const scale = (x: Float32Array) => x.map((v) => v * 40); // row norms ~ 60 against ~ 2: fine alone, not together
    const settled = await settle([
      mbvrLoss({ ...a, query: scale(a.query) }, { normalize: false, comm: comms[0] }),
      mbvrLoss({ ...b, fused: scale(b.fused) }, { normalize: false, comm: comms[1] }),
    ]);
    for (const x of settled) {
      const e = (x as PromiseRejectedResult).reason;
      assert.ok(e instanceof RangeError, String(e));
      assert.match(e.message, /for query and fused but received row norms up to .* \(values of the global batch: the largest query row is on rank 0, the largest fused row on rank 1\)$/);
    }
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

describe("the caller's side: concurrent calls, reused inputs, a transport that misbehaves", () => {
  it('losses started together on one communicator run one after another, each its own result', async () => {
    const random = rng(suiteSeed + 1020);
    const comms = localGroup(2);
    // Uneven splits, so that left to themselves the calls would reach their collectives
    // in different orders on the two ranks.
    const splits = [[290, 10], [15, 15], [10, 290]];
    const cases = splits.map((rows) => randomCase(random, rows[0] + rows[1], 64, 1));
    // Every rank starts all three without awaiting; their collectives must not interleave.
    const started = cases.map((c, i) => splits[i].map((_, r) => {
      const [inputs, o] = shard(c, {}, splits[i], r);
      return mbvrLoss(inputs, { ...o, comm: comms[r] });
    }));
    for (const [i, calls] of started.entries()) compareJoined(await Promise.all(calls), mbvrLossSync(cases[i]), `call ${i}`);
  });

  it('inputs changed or reused right after the call do not reach the result', async () => {
    const c = randomCase(rng(suiteSeed + 1021), 20, 8, 2);
    const rows = [9, 11];
    const comms = localGroup(2);
    const labels = Int32Array.from({ length: 20 }, (_, i) => i % 7);
    const margin = Float32Array.from({ length: 20 }, (_, i) => 0.01 * i);
    const calls = rows.map((_, r) => {
      const [inputs, o] = shard(c, { labels, margin }, rows, r);
      const p = mbvrLoss(inputs, { ...o, comm: comms[r] });
      for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) (inputs[key] as Float32Array).fill(NaN);
      (o.labels as Int32Array).fill(0);
      (o.margin as Float32Array).fill(5);
      return p;
    });
    compareJoined(await Promise.all(calls), mbvrLossSync(c, { labels, margin }), 'inputs poisoned after the call');
  });

  it('a communicator with a bad rank or size is refused before any collective', async () => {
    const [comm] = localGroup(1);
    const c = randomCase(rng(suiteSeed + 1022), 4, 4, 1);
    for (const [patch, Kind, message] of [
      [{ size: 0 }, RangeError, /^Expected a whole number from 1 to 2\^24 for comm.size but received 0/],
      [{ size: '2' }, TypeError, /for comm.size but received '2'/],
      [{ rank: 1 }, RangeError, /^Expected a whole number from 0 to 0 \(comm.size - 1\) for comm.rank but received 1/],
      [{ rank: 0.5 }, RangeError, /for comm.rank but received 0.5/],
    ] as const) {
      const bad = { ...comm, ...patch } as unknown as Communicator;
      await assert.rejects(mbvrLoss(c, { comm: bad }), (e: unknown) => e instanceof Kind && message.test((e as Error).message));
    }
  });

  /** A one-rank communicator whose collectives return copies (async, and sync when asked). */
  function loneCommunicator(withSync = false): Communicator {
    const copy = <T extends CommData>(d: T): T => d.slice() as T;
    return {
      rank: 0, size: 1,
      allGather: async (d) => copy(d), allReduce: async (d) => copy(d), reduceScatter: async (d) => copy(d),
      broadcast: async (d) => copy(d), barrier: async () => undefined,
      ...(withSync ? { sync: { allGather: copy, allReduce: copy, reduceScatter: copy, broadcast: copy, barrier: () => undefined } } : {}),
    };
  }

  it('rank and size are read once per call (a getter that changes cannot reach the collectives)', async () => {
    const c = randomCase(rng(suiteSeed + 1025), 6, 4, 1);
    let reads = 0;
    const base = loneCommunicator();
    const shifty = Object.defineProperties({ ...base }, {
      size: { get: () => (reads++ === 0 ? 1 : 2 ** 31), enumerable: true },
      rank: { get: () => (reads > 1 ? 7 : 0), enumerable: true },
    }) as Communicator;
    const out = await mbvrLoss(c, { comm: shifty });
    assert.equal(out.loss, mbvrLossSync(c).loss);
  });

  it('two processes that say they are the same rank are refused on every rank, not mixed up', async () => {
    const c = randomCase(rng(suiteSeed + 1026), 8, 4, 1);
    for (const rows of [[4, 4], [3, 5]]) {
      const comms = localGroup(2);
      const twins = [{ ...comms[0], rank: 1 }, comms[1]];
      const settled = await Promise.allSettled(rows.map((_, r) => {
        const [inputs, o] = shard(c, {}, rows, r);
        return mbvrLoss(inputs, { ...o, comm: twins[r] });
      }));
      for (const x of settled) {
        assert.equal(x.status, 'rejected');
        assert.match((x as PromiseRejectedResult).reason.message, /^mbvr: the communicator's ranks are inconsistent: place 0 of allGather's result came from a process that says it is rank 1 /);
      }
    }
  });

  it('a communicator that is not one is a TypeError naming the member', async () => {
    const c = randomCase(rng(suiteSeed + 1027), 6, 4, 1);
    const base = loneCommunicator(true);
    const cases: Array<[unknown, RegExp]> = [
      [null, /^Expected a Communicator \(mbvr\/mpi init\(\), or an object implementing it\) for comm but received null$/],
      [{ ...base, reduceScatter: undefined }, /^Expected a function \(the data-parallel loss needs it\) for comm.reduceScatter but received undefined$/],
      [{ ...base, hold: 3 }, /^Expected a function, or absent for comm.hold but received 3 of type number$/],
    ];
    for (const [comm, message] of cases) {
      await assert.rejects(mbvrLoss(c, { comm: comm as Communicator }), (e: unknown) => e instanceof TypeError && message.test((e as Error).message));
    }
    assert.throws(() => mbvrLossSync(c, { comm: { ...base, hold: 3 } as unknown as Communicator }), /^TypeError: Expected a function, or absent for comm.hold/);
    const noSync = { ...base, sync: { ...base.sync!, allGather: undefined } } as unknown as Communicator;
    assert.throws(() => mbvrLossSync(c, { comm: noSync }), /for comm.sync.allGather but received undefined/);
    const badHold = { ...base, hold: () => 5 } as unknown as Communicator;
    await assert.rejects(mbvrLoss(c, { comm: badHold }), /^Error: mbvr: comm.hold\(\) returned 5 of type number, not a function that releases the hold/);
  });

  it('a collective that returns the wrong kind or length is an Error naming it, not a wrong answer', async () => {
    const c = randomCase(rng(suiteSeed + 1023), 6, 4, 1);
    const base = loneCommunicator();
    const short = { ...base, allReduce: async <T extends CommData>(d: T) => d.slice(1) as T };
    await assert.rejects(mbvrLoss(c, { comm: short }), /^Error: mbvr: comm.allReduce returned Float64Array of length 5, not a Float64Array of length 6 /);
    const wrongType = { ...base, allGather: async <T extends CommData>(d: T) => Float64Array.from(d as ArrayLike<number>) as unknown as T };
    await assert.rejects(mbvrLoss(c, { comm: wrongType }), /mbvr: comm.allGather returned Float64Array of length \d+, not a Uint8Array/);
    const none = { ...base, reduceScatter: async () => undefined as never };
    await assert.rejects(mbvrLoss(c, { comm: none }), /mbvr: comm.reduceScatter returned undefined, not a Float32Array of length 24/);
  });

  it('mbvrLossSync refuses a communicator with a data-parallel mbvrLoss in flight', async () => {
    const c = randomCase(rng(suiteSeed + 1024), 6, 4, 1);
    const single = loneCommunicator(true);
    const pending = mbvrLoss(c, { comm: single });
    assert.throws(() => mbvrLossSync(c, { comm: single }), /^Error: mbvr: a data-parallel mbvrLoss is still in progress on this communicator: await it before mbvrLossSync$/);
    assert.equal((await pending).loss, mbvrLossSync(c).loss);
    assert.equal(mbvrLossSync(c, { comm: single }).loss, mbvrLossSync(c).loss); // and afterwards it runs
  });
});
