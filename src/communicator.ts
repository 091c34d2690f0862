// The transport a data-parallel loss runs over (docs/math.md section 6). `mbvr/mpi`
// implements it on MPI; any other transport (NCCL, a user's own) plugs in by
// implementing the same members with the same meaning.
//
// Rules every implementation keeps (docs/mpi.md expands them):
// - Collectives are called by every rank, in the same order, with matching arguments
//   (the same `op`, `root`, `counts` and, where stated, the same length). Calls run in
//   the order they were made on each rank, async and sync alike, so a rank may start
//   several async collectives without awaiting each.
// - Inputs are never modified, and are read (copied) before the call returns: the caller
//   may change, reuse or transfer its array at once. Every result is a new typed array
//   of the input's type, never a view of the input.
// - Every rank receives identical bits (allGather, allReduce, broadcast), so that all
//   ranks take the same decisions from them.
// - A failure rejects (or throws, for `sync`) with an Error; it never hangs a rank that
//   the failure did not already stop.

/** The element arrays a communicator moves. */
export type CommData = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Element-wise reductions. */
export type ReduceOp = 'sum' | 'max' | 'min';

/** Collectives that block the calling thread until done (same meaning as the async ones). */
export interface SyncCollectives {
  allGather<T extends CommData>(data: T, counts?: readonly number[]): T;
  allReduce<T extends CommData>(data: T, op?: ReduceOp): T;
  reduceScatter<T extends Float32Array | Float64Array>(data: T, counts: readonly number[]): T;
  broadcast<T extends CommData>(data: T, root?: number): T;
  barrier(): void;
}

export interface Communicator {
  /** This process's index, 0 <= rank < size. */
  readonly rank: number;
  /** The number of processes. */
  readonly size: number;

  /**
   * Every rank's `data` concatenated in rank order. A rank may contribute 0 elements.
   * `counts` (element counts per rank, the same array on every rank) may be passed when
   * known; without it the communicator finds the counts itself.
   */
  allGather<T extends CommData>(data: T, counts?: readonly number[]): Promise<T>;

  /** The element-wise reduction over ranks (`op` defaults to 'sum'); the same length on every rank. */
  allReduce<T extends CommData>(data: T, op?: ReduceOp): Promise<T>;

  /**
   * The element-wise sum over ranks of `data` (length sum(counts) on every rank), of which
   * rank r receives the counts[r] elements starting at counts[0] + ... + counts[r - 1].
   * Sums run in rank order, so the result is deterministic for a given world size.
   */
  reduceScatter<T extends Float32Array | Float64Array>(data: T, counts: readonly number[]): Promise<T>;

  /** Rank `root`'s data (default 0) on every rank; the same length on every rank. */
  broadcast<T extends CommData>(data: T, root?: number): Promise<T>;

  /** Resolves once every rank has called it. */
  barrier(): Promise<void>;

  /**
   * The same collectives, blocking the calling thread until done; they keep their place
   * in the order of calls among the async ones. Optional: `mbvrLossSync` and `mbvr/tfjs`
   * (whose `tf.customGrad` runs synchronously) need them when given a communicator.
   */
  readonly sync?: SyncCollectives;

  /**
   * Optional. Marks this communicator busy until the returned function is called: the
   * data-parallel loss holds it for the whole of a call, so that a transport can refuse
   * to shut down (or abort the job rather than hang the other ranks) while a loss is
   * between collectives.
   */
  hold?(): () => void;
}
