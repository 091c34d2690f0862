// mbvr/mpi: the Communicator of src/communicator.ts on MPI (MPI_COMM_WORLD), a thin
// binding in the spirit of mpi4py. The native addon (binding/mpi/, built only where
// CMake found an MPI) runs every MPI call on one communication thread, in call order;
// this file checks arguments with the wording of src/errors.ts and keeps the user-facing
// rules: docs/mpi.md describes the whole design.
//
// Importing this module never throws: the addon is loaded by init().
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import type { CommData, Communicator, ReduceOp, SyncCollectives } from './communicator';
import { Described, invalidParameterError } from './errors';
import { requireLength } from './validate';

/** What MPI_Init_thread provided; mbvr/mpi asks for 'funneled' (one thread calls MPI). */
export type ThreadLevel = 'single' | 'funneled' | 'serialized' | 'multiple';

/** A Communicator over MPI_COMM_WORLD. */
export interface MpiCommunicator extends Communicator {
  readonly sync: SyncCollectives;
  /** The MPI library, as MPI_Get_library_version says on its first line. */
  readonly library: string;
  /** The thread support MPI_Init_thread provided. */
  readonly threadLevel: ThreadLevel;
  /** Marks the communicator busy (a data-parallel loss holds it): see Communicator.hold. */
  hold(): () => void;
  /**
   * MPI_Finalize, after every collective already called. Optional: MPI is finalized when
   * the process exits normally. Collective: every rank finalizes (or exits) after its last
   * collective. Rejects while a data-parallel loss is in progress. Afterwards every
   * collective rejects (or throws).
   */
  finalize(): Promise<void>;
  /** MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job, this one included. */
  abort(code?: number): never;
}

// ---- the native module, typed once ---------------------------------------------------

type Kind = 'allGather' | 'allReduce' | 'reduceScatter' | 'broadcast' | 'barrier';

interface StartInfo {
  rank: number;
  size: number;
  library: string;
  threadLevel: ThreadLevel;
}

interface NativeMpi {
  start(): Promise<StartInfo>;
  collective(kind: Kind, data?: CommData, arg?: ReduceOp | number, counts?: readonly number[]): Promise<CommData | undefined>;
  collectiveSync(kind: Kind, data?: CommData, arg?: ReduceOp | number, counts?: readonly number[]): CommData | undefined;
  /** This rank's call of `kind` was rejected here: make it fail on every rank. */
  reject(kind: Kind, message: string): void;
  finalize(): Promise<void>;
  /** Returns (false) only when no MPI is running; otherwise the process ends in it. */
  abort(code: number): boolean;
  /** busy: an operation of several collectives (hold()) is in progress */
  onExit(code: number, busy: boolean): void;
}

const packageRoot = path.join(__dirname, '..');

/** Where the addon is: MBVR_MPI_ADDON_PATH, or build/Release/mpi/ (never prebuilds/: an
 * MPI binary is tied to the MPI it was built against). */
function addonPath(): string {
  const explicit = process.env.MBVR_MPI_ADDON_PATH;
  return explicit ? path.resolve(explicit) : path.join(packageRoot, 'build', 'Release', 'mpi', 'mbvr_mpi.node');
}

function loadNative(): NativeMpi {
  const file = addonPath();
  const solutions = [
    'Possible solutions:',
    '- Install an MPI with its development files, e.g. Open MPI on Debian/Ubuntu:',
    '    apt-get install openmpi-bin libopenmpi-dev   (or MPICH: apt-get install mpich libmpich-dev)',
    '- then rebuild mbvr from source (needs cmake >= 3.18 and a C++17 compiler):',
    '    MBVR_BUILD_FROM_SOURCE=1 npm rebuild mbvr',
    `  or in place: cd ${packageRoot} && npx cmake-js compile`,
  ];
  if (!fs.existsSync(file)) {
    throw new Error(
      [
        `mbvr/mpi: the MPI addon was not built (${file} does not exist): CMake found no MPI when mbvr was built.`,
        ...solutions,
      ].join('\n'),
    );
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as NativeMpi;
  } catch (cause) {
    throw new Error(
      [
        `mbvr/mpi: could not load the MPI addon ${file}.`,
        `Reason: ${(cause as Error).message.split('\n')[0]}`,
        '(Is the MPI it was built against still installed? A missing libmpi.so means it is not.)',
        ...solutions,
      ].join('\n'),
      { cause },
    );
  }
}

// ---- argument checks (user-facing wording: errors.ts) ---------------------------------

const DATA_KINDS = 'a Float32Array, Float64Array, Int32Array or Uint8Array';
const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'max', 'min'];

function commData(value: unknown): CommData {
  if (
    value instanceof Float32Array ||
    value instanceof Float64Array ||
    value instanceof Int32Array ||
    value instanceof Uint8Array
  )
    return value;
  throw invalidParameterError('data', DATA_KINDS, value);
}

function floatData(value: unknown): Float32Array | Float64Array {
  if (value instanceof Float32Array || value instanceof Float64Array) return value;
  throw invalidParameterError('data', 'a Float32Array or Float64Array', value);
}

function reduceOp(value: unknown): ReduceOp {
  if (value === undefined) return 'sum';
  const expected = `one of ${REDUCE_OPS.map((c) => `'${c}'`).join(', ')}`;
  if (typeof value !== 'string') throw invalidParameterError('op', expected, value);
  if (!REDUCE_OPS.includes(value as ReduceOp)) throw invalidParameterError('op', expected, new Described(`'${value}'`), RangeError);
  return value as ReduceOp;
}

function rootRank(value: unknown, size: number): number {
  if (value === undefined) return 0;
  const expected = `a rank, a whole number from 0 to ${size - 1}`;
  if (typeof value !== 'number') throw invalidParameterError('root', expected, value);
  if (!Number.isInteger(value) || value < 0 || value >= size) throw invalidParameterError('root', expected, value, RangeError);
  return value;
}

const MAX_COUNT = 2 ** 31 - 1; // MPI counts are C ints

function countsArray(value: unknown, size: number): readonly number[] {
  const expected = `an Array of ${size} whole numbers (one count per rank)`;
  if (!Array.isArray(value)) throw invalidParameterError('counts', expected, value);
  if (value.length !== size) throw invalidParameterError('counts', expected, new Described(`length ${value.length}`), RangeError);
  value.forEach((c: unknown, r) => {
    const rule = `a whole number from 0 to ${MAX_COUNT}`;
    if (typeof c !== 'number') throw invalidParameterError(`counts[${r}]`, rule, c);
    if (!Number.isInteger(c) || c < 0 || c > MAX_COUNT) throw invalidParameterError(`counts[${r}]`, rule, c, RangeError);
  });
  return value as readonly number[];
}

/** A call's arguments, checked, as the native collective takes them. */
type CallArgs = [data?: CommData, arg?: ReduceOp | number, counts?: readonly number[]];

// ---- the communicator ----------------------------------------------------------------

/** Operations of several collectives in progress (Communicator.hold): exiting during one ends the job. */
let holds = 0;

class MpiComm implements MpiCommunicator {
  readonly rank: number;
  readonly size: number;
  readonly library: string;
  readonly threadLevel: ThreadLevel;
  readonly sync: SyncCollectives;
  readonly #native: NativeMpi;
  #finalized: Promise<void> | undefined;

  constructor(native: NativeMpi, info: StartInfo) {
    this.#native = native;
    this.rank = info.rank;
    this.size = info.size;
    this.library = info.library;
    this.threadLevel = info.threadLevel;
    this.sync = Object.freeze({
      allGather: <T extends CommData>(data: T, counts?: readonly number[]) =>
        this.#callSync('allGather', () => this.#allGatherArgs(data, counts)) as T,
      allReduce: <T extends CommData>(data: T, op?: ReduceOp) =>
        this.#callSync('allReduce', () => [commData(data), reduceOp(op)]) as T,
      reduceScatter: <T extends Float32Array | Float64Array>(data: T, counts: readonly number[]) =>
        this.#callSync('reduceScatter', () => this.#reduceScatterArgs(data, counts)) as T,
      broadcast: <T extends CommData>(data: T, root?: number) =>
        this.#callSync('broadcast', () => [commData(data), rootRank(root, this.size)]) as T,
      barrier: () => {
        this.#callSync('barrier', () => []);
      },
    });
  }

  allGather<T extends CommData>(data: T, counts?: readonly number[]): Promise<T> {
    return this.#call('allGather', () => this.#allGatherArgs(data, counts)) as Promise<T>;
  }

  allReduce<T extends CommData>(data: T, op?: ReduceOp): Promise<T> {
    return this.#call('allReduce', () => [commData(data), reduceOp(op)]) as Promise<T>;
  }

  reduceScatter<T extends Float32Array | Float64Array>(data: T, counts: readonly number[]): Promise<T> {
    return this.#call('reduceScatter', () => this.#reduceScatterArgs(data, counts)) as Promise<T>;
  }

  broadcast<T extends CommData>(data: T, root?: number): Promise<T> {
    return this.#call('broadcast', () => [commData(data), rootRank(root, this.size)]) as Promise<T>;
  }

  async barrier(): Promise<void> {
    await this.#call('barrier', () => []);
  }

  hold(): () => void {
    holds++;
    let released = false;
    return () => {
      if (!released) holds--;
      released = true;
    };
  }

  finalize(): Promise<void> {
    if (holds > 0 && !this.#finalized)
      return Promise.reject(
        new Error(`mbvr/mpi: rank ${this.rank}: finalize() while a data-parallel loss is in progress; await the loss first`),
      );
    this.#finalized ??= this.#native.finalize();
    return this.#finalized;
  }

  abort(code = 1): never {
    if (!Number.isInteger(code)) throw invalidParameterError('code', 'a whole number', code, typeof code === 'number' ? RangeError : TypeError);
    this.#native.abort(code);
    process.exit(code); // MPI was not running (finalized): end this process alone
  }

  #allGatherArgs(data: unknown, counts: unknown): CallArgs {
    const d = commData(data);
    if (counts === undefined) return [d];
    const c = countsArray(counts, this.size);
    if (c[this.rank] !== d.length)
      throw invalidParameterError(`counts[${this.rank}]`, `data's length, ${d.length} (this rank's count)`, c[this.rank], RangeError);
    return [d, undefined, c];
  }

  #reduceScatterArgs(data: unknown, counts: unknown): CallArgs {
    const d = floatData(data);
    const c = countsArray(counts, this.size);
    requireLength(d, c.reduce((a, b) => a + b, 0), 'data', 'the sum of counts');
    return [d, undefined, c];
  }

  /**
   * Checks the arguments, then queues the call. Arguments this rank rejects still make
   * the call on the communication thread, as a failure (native reject()): every rank's
   * matching call then fails with this rank's message instead of waiting for it.
   */
  #checked(kind: Kind, check: () => CallArgs): CallArgs {
    try {
      return check();
    } catch (error) {
      if (this.#finalized === undefined) {
        try {
          this.#native.reject(kind, `${(error as Error).name}: ${(error as Error).message}`);
        } catch {
          // MPI not running: there is no call to align with
        }
      }
      throw error;
    }
  }

  #call(kind: Kind, check: () => CallArgs): Promise<CommData | undefined> {
    // The caller's stack, for errors that come back from the communication thread.
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, this.#call);
    try {
      const args = this.#checked(kind, check);
      return this.#native.collective(kind, ...args).catch((error: unknown) => {
        if (error instanceof Error && caller.stack)
          error.stack = `${error.name}: ${error.message}\n${caller.stack.split('\n').slice(1).join('\n')}`;
        throw error;
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #callSync(kind: Kind, check: () => CallArgs): CommData | undefined {
    const args = this.#checked(kind, check);
    return this.#native.collectiveSync(kind, ...args);
  }
}

let started: Promise<MpiCommunicator> | undefined;

async function start(): Promise<MpiCommunicator> {
  if (!isMainThread)
    throw new Error(
      'mbvr/mpi: init() must be called on the main thread. MPI is started once per process, on the main ' +
        "thread's instance of the addon; let the main thread make the collective calls (a worker can post it its data).",
    );
  // UCX (the transport of MPICH and of Open MPI's pml ucx) patches libc's brk/sbrk/mmap
  // while MPI starts, to learn of memory being unmapped; in a process whose other threads
  // allocate at that moment - V8's always do - the patching races with them, and one job
  // start in fifty or so crashed (docs/mpi.md). Off unless the user asks for it; UCX reads
  // the setting when its library loads, so before the addon (which links the MPI) does.
  if (process.env.UCX_MEM_EVENTS === undefined) process.env.UCX_MEM_EVENTS = 'no';
  const native = loadNative();
  const starting = native.start();
  // From now on the process's end is MPI's too: finalize on a clean exit, MPI_Abort on
  // any other (a non-zero code, an uncaught exception), so that no rank waits forever.
  let rank: number | undefined;
  let fatal: { error: unknown } | undefined;
  process.on('uncaughtExceptionMonitor', (error) => {
    fatal = { error };
  });
  process.on('exit', (code) => {
    if (code !== 0) {
      // Node prints an uncaught exception only after the 'exit' event, and MPI_Abort
      // ends the process right here: print it first, or it would never be seen.
      const uncaught = fatal && process.listenerCount('uncaughtException') === 0;
      const who = rank === undefined ? 'this rank' : `rank ${rank}`;
      fs.writeSync(
        2,
        `${uncaught ? `${inspect(fatal!.error)}\n\n` : ''}mbvr/mpi: ${who} exits with code ${code}` +
          `${uncaught ? ' (an uncaught exception)' : ''}\n`,
      );
    }
    native.onExit(code, holds > 0);
  });
  const info = await starting;
  rank = info.rank;
  return new MpiComm(native, info);
}

/**
 * Starts MPI (MPI_Init_thread on the addon's communication thread) and resolves with the
 * communicator over MPI_COMM_WORLD. Idempotent: every call returns the same promise.
 * Rejects with an Error saying what to install when mbvr was built without MPI.
 */
export function init(): Promise<MpiCommunicator> {
  started ??= start();
  return started;
}
