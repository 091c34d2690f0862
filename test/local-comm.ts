// An in-process Communicator for tests: P ranks in one process, each a concurrent async
// caller. A collective completes once every rank has called it (the k-th collective of
// each rank is matched with the k-th of the others, as MPI matches them); the results
// follow src/communicator.ts. Lets the data-parallel loss be tested without MPI.
import type { CommData, Communicator, ReduceOp } from '../src/communicator';

type Pending = { data: CommData; counts?: readonly number[]; op?: ReduceOp; root?: number; resolve: (v: CommData) => void };

export function localGroup(size: number): Communicator[] {
  const rounds: Pending[][] = [];
  const calls = new Array<number>(size).fill(0);
  const enter = (rank: number, p: Pending, finish: (all: Pending[]) => CommData[]) => {
    const round = calls[rank]++;
    (rounds[round] ??= [])[rank] = p;
    const all = rounds[round];
    if (all.filter(Boolean).length === size) {
      const results = finish(all);
      // Resolve on a later tick, in rank order: like a real transport, never synchronously.
      setImmediate(() => all.forEach((q, r) => q.resolve(results[r])));
    }
  };
  const make = <T extends CommData>(like: T, n: number): T => new (like.constructor as new (n: number) => T)(n);
  return Array.from({ length: size }, (_, rank) => {
    const collective = <T extends CommData>(data: T, extra: Omit<Pending, 'data' | 'resolve'>, finish: (all: Pending[]) => CommData[]) =>
      new Promise<T>((resolve) => enter(rank, { data: data.slice() as T, ...extra, resolve: resolve as (v: CommData) => void }, finish));
    const comm: Communicator = {
      rank,
      size,
      allGather: (data, counts) =>
        collective(data, { counts }, (all) => {
          const total = all.reduce((n, p) => n + p.data.length, 0);
          const out = make(all[0].data, total);
          let at = 0;
          for (const p of all) {
            (out as Float32Array).set(p.data as Float32Array, at);
            at += p.data.length;
          }
          return all.map(() => out.slice());
        }),
      allReduce: (data, op = 'sum') =>
        collective(data, { op }, (all) => {
          const out = all[0].data.slice();
          for (let r = 1; r < size; r++)
            for (let i = 0; i < out.length; i++) {
              const v = all[r].data[i] as number;
              out[i] = op === 'sum' ? (out[i] as number) + v : op === 'max' ? Math.max(out[i] as number, v) : Math.min(out[i] as number, v);
            }
          return all.map(() => out.slice());
        }),
      reduceScatter: (data, counts) =>
        collective(data, { counts }, (all) => {
          const sum = all[0].data.slice();
          for (let r = 1; r < size; r++) for (let i = 0; i < sum.length; i++) (sum as Float32Array)[i] += all[r].data[i] as number;
          let at = 0;
          return all.map((_, r) => {
            const part = sum.slice(at, at + counts[r]);
            at += counts[r];
            return part;
          });
        }),
      broadcast: (data, root = 0) => collective(data, { root }, (all) => all.map(() => all[root].data.slice())),
      barrier: () => collective(new Uint8Array(0), {}, (all) => all.map(() => new Uint8Array(0))).then(() => undefined),
    };
    return comm;
  });
}
