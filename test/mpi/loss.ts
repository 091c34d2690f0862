// Run under mpirun by test/mpi-loss.test.ts: the data-parallel loss over MPI. Every rank
// builds the same random global batches (one seed), takes its rows, and computes the
// loss with mbvrLoss and with mbvrLossSync (comm.sync); the joined gradients must equal
// the single-process result on the whole batch, every rank must hold the same scalars,
// and bad input or mismatched options on one rank must reject on every rank, after
// which the next call works. Each rank prints `MPI-RESULT {json}` with its failures.
import { init } from '../../src/mpi';
import { mbvrLoss, mbvrLossSync } from '../../src/index';
import type { MbvrOptions, MbvrResult } from '../../src/types';
import { GRAD_KEYS, randInt, randomCase, randomOptions, rng } from '../helpers';
import { randomSplit, shard } from '../shards';

(async () => {
  const comm = await init();
  const seed = Number(process.argv[2]);
  const trials = Number(process.argv[3] ?? 6);
  const failures: string[] = [];
  const fail = (what: string) => failures.push(`rank ${comm.rank}: ${what}`);

  // The joined relative error ||out - ref|| / ||ref|| of each rank's slice, over all ranks.
  const joinedError = async (mine: Float32Array | undefined, ref: Float32Array) => {
    const sums = new Float64Array(2);
    if (mine) for (let i = 0; i < mine.length; i++) sums[0] += (mine[i] - ref[i]) ** 2;
    for (let i = 0; i < ref.length; i++) sums[1] += ref[i] ** 2;
    const all = await comm.allReduce(sums, 'sum');
    return Math.sqrt(all[0] / Math.max(all[1], 1e-300));
  };
  const same = async (value: number) => {
    const all = await comm.allGather(Float64Array.of(value));
    return all.every((v) => Object.is(v, all[0]));
  };

  let checks = 0;
  for (let trial = 0; trial < trials; trial++) {
    const random = rng(seed * 1000 + trial);
    const B = randInt(random, 1, 90);
    const c = randomCase(random, B, randInt(random, 1, 24), randInt(random, 1, 3));
    const options: MbvrOptions = { ...randomOptions(random, B), backend: 'cpu' };
    if (trial % 4 < 3) options[(['alpha', 'beta', 'gamma'] as const)[trial % 4]] = 0;
    const rows = trial === 0 && comm.size > 1 ? [B, ...new Array<number>(comm.size - 1).fill(0)] : randomSplit(random, B, comm.size);
    const [inputs, o] = shard(c, options, rows, comm.rank);
    const start = rows.slice(0, comm.rank).reduce((a, b) => a + b, 0);
    const single = mbvrLossSync(c, options);
    const results: [string, MbvrResult][] = [
      ['async', await mbvrLoss(inputs, { ...o, comm })],
      ['sync', mbvrLossSync(inputs, { ...o, comm })],
    ];
    for (const [how, out] of results) {
      const label = `trial ${trial} ${how} (rows ${rows.join('+')})`;
      if (!(await same(out.loss)) || !(await same(out.grads.temperature))) fail(`${label}: ranks hold different scalars`);
      const err = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-6);
      if (err(out.loss, single.loss) > 1e-5) fail(`${label}: loss ${out.loss} vs ${single.loss}`);
      if (err(out.grads.temperature, single.grads.temperature) > 1e-5) fail(`${label}: dL/dtau ${out.grads.temperature} vs ${single.grads.temperature}`);
      for (const key of GRAD_KEYS) {
        const whole = single.grads[key];
        if (!whole) continue;
        const per = key === 'shuffled' ? c.k * c.dim : c.dim;
        const e = await joinedError(out.grads[key], whole.subarray(start * per, (start + rows[comm.rank]) * per));
        if (!(e <= 1e-5)) fail(`${label}: grads.${key} joined relative error ${e}`);
        checks++;
      }
    }
    // async and sync: the same bits.
    for (const key of GRAD_KEYS) {
      const a = results[0][1].grads[key], b = results[1][1].grads[key];
      if (a && b && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) !== 0)
        fail(`trial ${trial}: async and sync grads.${key} differ`);
    }
  }

  // Faults: every rank rejects, then the next call works.
  if (comm.size > 1) {
    const c = randomCase(rng(seed), 12, 6, 1);
    const rows = randomSplit(rng(seed + 1), 12, comm.size);
    const [inputs, o] = shard(c, {}, rows, comm.rank);
    const bad = comm.rank === 1 ? { ...inputs, fused: Float32Array.from(inputs.fused as Float32Array, (v, i) => (i === 0 ? NaN : v)) } : inputs;
    const expectRejection = async (call: Promise<unknown>, test: (e: Error) => boolean, what: string) => {
      try {
        await call;
        fail(`${what}: resolved`);
      } catch (e) {
        if (!test(e as Error)) fail(`${what}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      }
    };
    if (rows[1] > 0)
      await expectRejection(
        mbvrLoss(bad, { ...o, comm }),
        (e) =>
          comm.rank === 1
            ? e instanceof RangeError && e.message === 'Expected finite numbers for fused but received NaN at index 0'
            : !(e instanceof RangeError) && e.message === 'mbvr: rank 1 rejected its input of the data-parallel loss: RangeError: Expected finite numbers for fused but received NaN at index 0',
        'bad input on rank 1',
      );
    await expectRejection(
      mbvrLoss(inputs, { ...o, comm, temperature: comm.rank === comm.size - 1 ? 0.1 : 0.05 }),
      (e) => e.message.startsWith(`mbvr: the ranks disagree on temperature: rank 0 has 0.05, rank ${comm.size - 1} has 0.1`),
      'mismatched temperature',
    );
    try {
      mbvrLossSync(inputs, { ...o, comm, normalize: comm.rank === 0 });
      fail('mismatched normalize (sync): returned');
    } catch (e) {
      if (!/disagree on normalize/.test((e as Error).message)) fail(`mismatched normalize (sync): ${(e as Error).message}`);
    }
    const after = await mbvrLoss(inputs, { ...o, comm });
    if (Math.abs(after.loss - mbvrLossSync(c).loss) > 1e-5 * Math.abs(after.loss)) fail('the call after the faults');
    checks += 4;
  }
  console.log(`MPI-RESULT ${JSON.stringify({ rank: comm.rank, size: comm.size, checks, failures })}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
