// Run under mpirun by test/mpi-comm.test.ts: every collective, dtype and op, sync and
// async, against results computed locally (each rank's data comes from its rank and the
// seed), then argument errors and calls that do not match across ranks.
//   node --import tsx test/mpi/collectives.ts <seed> [finalize] [worker]
// Prints `MPI-RESULT {rank, size, checks, failures, digest, ...}` per rank; `digest`
// covers every result all ranks must hold bit for bit (allGather, allReduce, broadcast).
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import type { CommData, ReduceOp } from '../../src/communicator';
import { init, type MpiCommunicator } from '../../src/mpi';
import { Checks, concat, DTYPES, digest, makeArray, rankData, rankLength, type DtypeName } from './common';

const seed = Number(process.argv[2] ?? 1);
const flags = new Set(process.argv.slice(3));

type Mode = 'async' | 'sync';
const MODES: readonly Mode[] = ['async', 'sync'];

/** Every rank's data for `tag`: the inputs of the whole world, known to each rank. */
function world(size: number, tag: string, dtype: DtypeName, lengths: readonly number[], exact = true): CommData[] {
  return Array.from({ length: size }, (_, r) => rankData(seed, r, tag, dtype, lengths[r], exact));
}

/** Element-wise reduction of the ranks' arrays as MPI defines it for exact inputs. */
function reduceLocally(dtype: DtypeName, parts: readonly CommData[], op: ReduceOp): CommData {
  const out = makeArray(dtype, parts[0].length);
  for (let i = 0; i < out.length; i++) {
    let acc = parts[0][i];
    for (let r = 1; r < parts.length; r++) {
      const x = parts[r][i];
      acc = op === 'sum' ? acc + x : op === 'max' ? Math.max(acc, x) : Math.min(acc, x);
    }
    out[i] = acc; // Uint8 sums wrap mod 256 on assignment, as C's unsigned char does
  }
  return out;
}

/** reduceScatter's contract: segment `rank` of the sum over ranks, added in rank order
 * in the element type. */
function reduceScatterLocally(dtype: 'Float32Array' | 'Float64Array', parts: readonly CommData[], counts: readonly number[], rank: number): CommData {
  const start = counts.slice(0, rank).reduce((a, b) => a + b, 0);
  const out = makeArray(dtype, counts[rank]);
  const round = dtype === 'Float32Array' ? Math.fround : (x: number) => x;
  for (let i = 0; i < out.length; i++) {
    let acc = parts[0][start + i];
    for (let r = 1; r < parts.length; r++) acc = round(acc + parts[r][start + i]);
    out[i] = acc;
  }
  return out;
}

async function collectives(comm: MpiCommunicator, c: Checks, shared: CommData[]): Promise<void> {
  const { rank, size } = comm;
  const ranks = Array.from({ length: size }, (_, r) => r);

  // allGather: uneven lengths with zeros, counts given or found, every dtype.
  for (const dtype of DTYPES)
    for (const withCounts of [false, true])
      for (const mode of MODES) {
        const tag = `allGather/${dtype}/${withCounts}/${mode}`;
        const lengths = ranks.map((r) => rankLength(seed, r, tag));
        const parts = world(size, tag, dtype, lengths);
        const counts = withCounts ? lengths : undefined;
        const out = mode === 'async' ? await comm.allGather(parts[rank], counts) : comm.sync.allGather(parts[rank], counts);
        c.equalBits(out, concat(dtype, parts), tag);
        shared.push(out);
      }
  // Every rank contributes nothing.
  const empty = await comm.allGather(new Float64Array(0), ranks.map(() => 0));
  c.equalBits(empty, new Float64Array(0), 'allGather of zero elements everywhere');
  // Larger, so that transports split messages: ~50k floats per rank, uneven; with counts
  // the addon gathers in place (the input copied straight into the result).
  for (const withCounts of [false, true]) {
    const tag = `allGather/large/${withCounts}`;
    const lengths = ranks.map((r) => 40_000 + 5_000 * r);
    const parts = world(size, tag, 'Float32Array', lengths, false);
    const out = await comm.allGather(parts[rank], withCounts ? lengths : undefined);
    c.equalBits(out, concat('Float32Array', parts), tag);
    shared.push(out);
  }

  // allReduce: every dtype and op, exact inputs, so any summation order gives these bits.
  for (const dtype of DTYPES)
    for (const op of ['sum', 'max', 'min'] as const)
      for (const mode of MODES) {
        const tag = `allReduce/${dtype}/${op}/${mode}`;
        const n = 1 + rankLength(seed, 0, tag, 40);
        const parts = world(size, tag, dtype, ranks.map(() => n));
        const out = mode === 'async' ? await comm.allReduce(parts[rank], op) : comm.sync.allReduce(parts[rank], op);
        c.equalBits(out, reduceLocally(dtype, parts, op), tag);
        shared.push(out);
      }
  {
    const parts = world(size, 'allReduce/default-op', 'Int32Array', ranks.map(() => 5));
    c.equalBits(await comm.allReduce(parts[rank]), reduceLocally('Int32Array', parts, 'sum'), "allReduce's op defaults to 'sum'");
    c.equalBits(await comm.allReduce(new Float32Array(0), 'max'), new Float32Array(0), 'allReduce of zero elements');
  }
  // Arbitrary floats: close to the float64 sum, and (through `shared`) the same bits on
  // every rank.
  for (const dtype of ['Float32Array', 'Float64Array'] as const) {
    const tag = `allReduce/${dtype}/arbitrary`;
    const parts = world(size, tag, dtype, ranks.map(() => 3000), false);
    const out = await comm.allReduce(parts[rank], 'sum');
    let err = 0;
    let norm = 0;
    for (let i = 0; i < out.length; i++) {
      let exact = 0;
      let abs = 0;
      for (const p of parts) {
        exact += p[i];
        abs += Math.abs(p[i]);
      }
      err = Math.max(err, Math.abs(out[i] - exact));
      norm = Math.max(norm, abs);
    }
    c.ok(err <= size * (dtype === 'Float32Array' ? 2 ** -23 : 2 ** -52) * norm, `${tag}: max error ${err}`);
    shared.push(out);
  }

  // reduceScatter: uneven counts with zeros; the bits of the rank-order sum, twice.
  for (const dtype of ['Float32Array', 'Float64Array'] as const)
    for (const mode of MODES) {
      const tag = `reduceScatter/${dtype}/${mode}`;
      const counts = ranks.map((r) => rankLength(seed, r, tag, 300));
      const total = counts.reduce((a, b) => a + b, 0);
      const parts = world(size, tag, dtype, ranks.map(() => total), false);
      const expected = reduceScatterLocally(dtype, parts, counts, rank);
      for (const round of [1, 2]) {
        const out =
          mode === 'async'
            ? await comm.reduceScatter(parts[rank] as Float32Array | Float64Array, counts)
            : comm.sync.reduceScatter(parts[rank] as Float32Array | Float64Array, counts);
        c.equalBits(out, expected, `${tag} (run ${round})`);
      }
    }

  // broadcast: every dtype and root; the other ranks' data differs and is ignored.
  for (const dtype of DTYPES)
    for (const root of ranks.slice(0, 3))
      for (const mode of MODES) {
        const tag = `broadcast/${dtype}/${root}/${mode}`;
        const n = rankLength(seed, 0, tag, 20);
        const parts = world(size, tag, dtype, ranks.map(() => n));
        const out = mode === 'async' ? await comm.broadcast(parts[rank], root) : comm.sync.broadcast(parts[rank], root);
        c.equalBits(out, parts[root], tag);
        shared.push(out);
      }
  {
    const parts = world(size, 'broadcast/default-root', 'Uint8Array', ranks.map(() => 4));
    c.equalBits(await comm.broadcast(parts[rank]), parts[0], "broadcast's root defaults to 0");
  }

  c.ok((await comm.barrier()) === undefined, 'barrier resolves with undefined');
  c.ok(comm.sync.barrier() === undefined, 'sync barrier returns undefined');
}

/** Many async calls at once, with a sync call among them: run and settled in call order. */
async function ordering(comm: MpiCommunicator, c: Checks, shared: CommData[]): Promise<void> {
  const { rank, size } = comm;
  const ranks = Array.from({ length: size }, (_, r) => r);
  const calls: { promise: Promise<unknown>; expected: CommData | undefined; tag: string }[] = [];
  const settled: number[] = [];
  for (let i = 0; i < 60; i++) {
    const tag = `ordering/${i}`;
    const dtype = DTYPES[i % DTYPES.length];
    const n = 1 + (i % 7);
    const parts = world(size, tag, dtype, ranks.map((r) => (i % 5 === 0 ? (r + i) % 4 : n))); // allGather: uneven
    let promise: Promise<unknown>;
    let expected: CommData | undefined;
    switch (i % 5) {
      case 0:
        promise = comm.allGather(parts[rank]);
        expected = concat(dtype, parts);
        break;
      case 1:
      case 4:
        promise = comm.allReduce(parts[rank], 'max');
        expected = reduceLocally(dtype, parts, 'max');
        break;
      case 2:
        promise = comm.broadcast(parts[rank], i % size);
        expected = parts[i % size];
        break;
      default:
        promise = comm.barrier();
        expected = undefined;
    }
    promise.then(() => settled.push(i), () => settled.push(i));
    calls.push({ promise, expected, tag });
    if (i === 30) {
      const sync = world(size, 'ordering/sync', 'Float64Array', ranks.map(() => 3));
      c.equalBits(comm.sync.allReduce(sync[rank], 'min'), reduceLocally('Float64Array', sync, 'min'), 'a sync call among pending async ones');
    }
  }
  const results = await Promise.all(calls.map((call) => call.promise));
  results.forEach((out, i) => {
    const { expected, tag } = calls[i];
    if (expected === undefined) c.ok(out === undefined, tag);
    else {
      c.equalBits(out, expected, tag);
      shared.push(out as CommData);
    }
  });
  c.ok(settled.every((v, i) => v === i), `promises settle in call order: ${settled.slice(0, 12).join(',')}...`);
}

/** Inputs are copied before the call returns and never modified; outputs are new arrays. */
async function ownership(comm: MpiCommunicator, c: Checks): Promise<void> {
  const { rank, size } = comm;
  const ranks = Array.from({ length: size }, (_, r) => r);
  const parts = world(size, 'ownership', 'Float32Array', ranks.map(() => 64));

  const changed = parts[rank].slice();
  const p1 = comm.allReduce(changed, 'sum');
  changed.fill(1234); // after the call returned, before the collective ran
  c.equalBits(await p1, reduceLocally('Float32Array', parts, 'sum'), 'input changed right after an async call');

  const moved = parts[rank].slice();
  const p2 = comm.allGather(moved);
  structuredClone(moved.buffer, { transfer: [moved.buffer] }); // detaches `moved`
  c.ok(moved.length === 0, 'the transfer detached the input');
  c.equalBits(await p2, concat('Float32Array', parts), 'input detached right after an async call');

  const kept = parts[rank].slice();
  const out = comm.sync.allReduce(kept, 'max');
  c.equalBits(kept, parts[rank], 'input unchanged by a sync call');
  c.ok(out !== kept && out.buffer !== kept.buffer && out instanceof Float32Array, 'the result is a new Float32Array');

  // A view at an offset into a larger buffer, and shared memory.
  const big = new Float64Array(100).fill(-7);
  const part = world(size, 'ownership/view', 'Float64Array', ranks.map(() => 10));
  big.set(part[rank], 37);
  c.equalBits(await comm.allGather(big.subarray(37, 47)), concat('Float64Array', part), 'a subarray at an offset');
  const sharedInput = new Int32Array(new SharedArrayBuffer(4 * 6));
  const sparts = world(size, 'ownership/shared', 'Int32Array', ranks.map(() => 6));
  sharedInput.set(sparts[rank]);
  c.equalBits(await comm.allReduce(sharedInput, 'min'), reduceLocally('Int32Array', sparts, 'min'), 'a SharedArrayBuffer input');
}

/** Bad arguments on every rank: the argument named, the class right, the next call fine. */
async function badArguments(comm: MpiCommunicator, c: Checks): Promise<void> {
  const { rank, size } = comm;
  const f = new Float32Array([1, 2, 3]);
  const cases: [string, (sync: boolean) => unknown, ErrorConstructor, string][] = [
    ['data as an Array', (s) => (s ? comm.sync.allReduce([1, 2] as unknown as Float32Array) : comm.allReduce([1, 2] as unknown as Float32Array)),
      TypeError, 'Expected a Float32Array, Float64Array, Int32Array or Uint8Array for data but received Array'],
    ['data as an Int16Array', (s) => (s ? comm.sync.allGather(new Int16Array(2) as unknown as Int32Array) : comm.allGather(new Int16Array(2) as unknown as Int32Array)),
      TypeError, 'Expected a Float32Array, Float64Array, Int32Array or Uint8Array for data but received Int16Array'],
    ['an unknown op', (s) => (s ? comm.sync.allReduce(f, 'prod' as ReduceOp) : comm.allReduce(f, 'prod' as ReduceOp)),
      RangeError, "Expected one of 'sum', 'max', 'min' for op but received 'prod'"],
    ['op as a number', (s) => (s ? comm.sync.allReduce(f, 3 as unknown as ReduceOp) : comm.allReduce(f, 3 as unknown as ReduceOp)),
      TypeError, "Expected one of 'sum', 'max', 'min' for op but received 3 of type number"],
    ['root out of range', (s) => (s ? comm.sync.broadcast(f, size) : comm.broadcast(f, size)),
      RangeError, `Expected a rank, a whole number from 0 to ${size - 1} for root but received ${size} of type number`],
    ['root as a string', (s) => (s ? comm.sync.broadcast(f, '0' as unknown as number) : comm.broadcast(f, '0' as unknown as number)),
      TypeError, `Expected a rank, a whole number from 0 to ${size - 1} for root but received '0' of type string`],
    ['counts of the wrong length', (s) => (s ? comm.sync.allGather(f, new Array(size + 1).fill(3)) : comm.allGather(f, new Array(size + 1).fill(3))),
      RangeError, `Expected an Array of ${size} whole numbers (one count per rank) for counts but received length ${size + 1}`],
    ['counts not an Array', (s) => (s ? comm.sync.allGather(f, new Int32Array(size) as unknown as number[]) : comm.allGather(f, new Int32Array(size) as unknown as number[])),
      TypeError, `Expected an Array of ${size} whole numbers (one count per rank) for counts but received Int32Array`],
    ['a negative count', (s) => {
      const counts = new Array(size).fill(3);
      counts[(rank + 1) % size] = -1;
      return s ? comm.sync.allGather(f, counts) : comm.allGather(f, counts);
    }, RangeError, `Expected a whole number from 0 to 2147483647 for counts[${(rank + 1) % size}] but received -1 of type number`],
    ["counts[rank] not data's length", (s) => {
      const counts = new Array(size).fill(3);
      counts[rank] = 2;
      return s ? comm.sync.allGather(f, counts) : comm.allGather(f, counts);
    }, RangeError, `Expected data's length, 3 (this rank's count) for counts[${rank}] but received 2 of type number`],
    ['reduceScatter of an Int32Array', (s) => (s ? comm.sync.reduceScatter(new Int32Array(size) as unknown as Float32Array, new Array(size).fill(1))
      : comm.reduceScatter(new Int32Array(size) as unknown as Float32Array, new Array(size).fill(1))),
      TypeError, 'Expected a Float32Array or Float64Array for data but received Int32Array'],
    ['reduceScatter with data not sum(counts) long', (s) => (s ? comm.sync.reduceScatter(new Float64Array(size + 1), new Array(size).fill(1))
      : comm.reduceScatter(new Float64Array(size + 1), new Array(size).fill(1))),
      RangeError, `Expected a length of ${size} (the sum of counts) for data but received length ${size + 1}`],
    ['reduceScatter without counts', (s) => (s ? comm.sync.reduceScatter(f, undefined as unknown as number[]) : comm.reduceScatter(f, undefined as unknown as number[])),
      TypeError, `Expected an Array of ${size} whole numbers (one count per rank) for counts but received undefined`],
  ];
  for (const [what, call, Kind, message] of cases) {
    c.throws(() => call(true), Kind, message, `sync: ${what}`);
    let result: unknown;
    try {
      result = call(false);
    } catch (error) {
      c.ok(false, `async: ${what}: threw synchronously (${(error as Error).message}) instead of rejecting`);
      continue;
    }
    await c.rejects(result as Promise<unknown>, Kind, message, `async: ${what}`);
  }
  const parts = world(size, 'after-bad-arguments', 'Float64Array', Array(size).fill(4));
  c.equalBits(await comm.allReduce(parts[rank]), reduceLocally('Float64Array', parts, 'sum'), 'a good call after bad arguments');
  c.throws(() => comm.abort(1.5), RangeError, 'Expected a whole number for code but received 1.5 of type number', 'abort(1.5)');
}

/** One rank's bad arguments, or calls that differ across ranks: every rank fails, with a
 * message that names the odd rank, and the next call works. */
async function disagreement(comm: MpiCommunicator, c: Checks): Promise<void> {
  const { rank, size } = comm;
  const ranks = Array.from({ length: size }, (_, r) => r);
  const good = async (tag: string) => {
    const parts = world(size, tag, 'Int32Array', ranks.map(() => 5));
    c.equalBits(await comm.allReduce(parts[rank], 'sum'), reduceLocally('Int32Array', parts, 'sum'), `a good call after ${tag}`);
  };
  const f = new Float32Array(4);

  // Rank 1's op is invalid: RangeError there, an Error naming rank 1 elsewhere.
  const prod = "RangeError: Expected one of 'sum', 'max', 'min' for op but received 'prod'";
  if (rank === 1) await c.rejects(comm.allReduce(f, 'prod' as ReduceOp), RangeError, prod.slice('RangeError: '.length), 'rank 1: its own bad op');
  else {
    const p = comm.allReduce(f, 'sum');
    await c.rejects(p, Error, `mbvr/mpi: rank 1 passed invalid arguments to allReduce: ${prod} (so the call fails on every rank)`, 'another rank: rank 1 bad op');
    await p.catch((e: { rank?: number }) => c.ok(e.rank === rank, `the error carries this rank (${e.rank})`));
  }
  await good('one bad op');

  // The same with sync calls: rank 1's root is out of range.
  const rootMessage = `Expected a rank, a whole number from 0 to ${size - 1} for root but received ${size} of type number`;
  if (rank === 1) c.throws(() => comm.sync.broadcast(f, size), RangeError, rootMessage, 'rank 1: its own bad root (sync)');
  else
    c.throws(() => comm.sync.broadcast(f, 0), Error,
      `mbvr/mpi: rank 1 passed invalid arguments to broadcast: RangeError: ${rootMessage} (so the call fails on every rank)`, 'another rank: rank 1 bad root (sync)');
  await good('one bad root');

  const mismatch = "mbvr/mpi: the ranks' collective calls do not match (every rank must make the same calls in the same order, with matching arguments): ";
  // Rank 0's length differs: named as the odd one out from 3 ranks on; with 2, the tie
  // names rank 1 against rank 0.
  const lengthMessage =
    size === 2
      ? `${mismatch}rank 0 called allReduce(Float32Array of 3, 'sum') but rank 1 called allReduce(Float32Array of 4, 'sum')`
      : `${mismatch}rank 1 called allReduce(Float32Array of 4, 'sum') but rank 0 called allReduce(Float32Array of 3, 'sum')`;
  await c.rejects(comm.allReduce(new Float32Array(rank === 0 ? 3 : 4)), Error, lengthMessage, 'lengths differ');
  await good('lengths differ');

  // The last rank calls barrier while the others broadcast.
  const last = size - 1;
  const kindPattern = new RegExp(`called broadcast\\(Int32Array of 2, root 0\\).* rank ${last} called barrier\\(\\)`);
  if (rank === last) await c.rejects(comm.barrier(), Error, kindPattern, 'different collectives (barrier)');
  else await c.rejects(comm.broadcast(new Int32Array(2), 0), Error, kindPattern, 'different collectives (broadcast)');
  await good('different collectives');

  // Rank 0 passes counts that are not the ranks' lengths.
  const lengths = ranks.map((r) => r + 1);
  const counts = rank === 0 ? lengths.map((n, r) => (r === 0 ? n : n + 1)) : lengths;
  await c.rejects(comm.allGather(new Uint8Array(lengths[rank]), counts), Error,
    `${mismatch}allGather: the counts passed on rank 0 are not the lengths of the ranks' data (${lengths.join(', ')})`, 'counts differ');
  await good('counts differ');
}

async function workerInit(c: Checks): Promise<void> {
  // tsx's --import hooks do not reach worker threads: register its CommonJS hook there.
  const script = path.join(__dirname, 'worker-init.ts');
  const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(script)});`;
  const worker = new Worker(code, { eval: true });
  const message = await new Promise<string>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  c.ok(message.startsWith('mbvr/mpi: init() must be called on the main thread.'), `init() in a worker thread: ${message}`);
}

async function main(): Promise<void> {
  const comm = await init();
  const c = new Checks();
  const shared: CommData[] = [];
  c.ok((await init()) === comm, 'init() is idempotent');
  c.ok(comm.rank >= 0 && comm.rank < comm.size, 'rank in [0, size)');
  await collectives(comm, c, shared);
  await ordering(comm, c, shared);
  await ownership(comm, c);
  await badArguments(comm, c);
  if (comm.size >= 2) await disagreement(comm, c);
  if (flags.has('worker')) await workerInit(c);
  if (flags.has('finalize')) {
    await comm.finalize();
    await comm.finalize(); // idempotent
    const notRunning = /^mbvr\/mpi: MPI is not running: MPI was finalized/;
    await c.rejects(comm.allReduce(new Float32Array(1)), Error, notRunning, 'allReduce after finalize');
    c.throws(() => comm.sync.barrier(), Error, notRunning, 'sync barrier after finalize');
  }
  c.report({ rank: comm.rank, size: comm.size, digest: digest(shared), library: comm.library, threadLevel: comm.threadLevel, ucxMemEvents: process.env.UCX_MEM_EVENTS });
  // No finalize() otherwise: the process must end by itself, MPI finalized at exit.
}

void main();
