// Shared by the scripts test/mpi-comm.test.ts runs under mpirun. Each rank's data is
// derived from (seed, rank, tag), so every rank can build every other rank's data and
// compute the expected result of a collective locally. Checks are collected, not thrown,
// and each rank ends by printing one line: `MPI-RESULT {json}`.
import { mulberry32 } from '../../src/random';
import type { CommData } from '../../src/communicator';

export type DtypeName = 'Float32Array' | 'Float64Array' | 'Int32Array' | 'Uint8Array';
export const DTYPES: readonly DtypeName[] = ['Float32Array', 'Float64Array', 'Int32Array', 'Uint8Array'];
const CONSTRUCTORS = { Float32Array, Float64Array, Int32Array, Uint8Array };

export function makeArray(dtype: DtypeName, length: number): CommData {
  return new CONSTRUCTORS[dtype](length);
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function random(seed: number, rank: number, tag: string): () => number {
  return mulberry32(fnv1a(`${seed}/${rank}/${tag}`));
}

/**
 * Rank `rank`'s data for `tag`. `exact` floats are multiples of 1/64 in [-16, 16]: sums
 * of a few of them are exact in float32, whatever the order MPI adds them in. Other
 * floats are arbitrary, for checks of identical bits and of summation order.
 */
export function rankData(seed: number, rank: number, tag: string, dtype: DtypeName, length: number, exact = true): CommData {
  const next = random(seed, rank, tag);
  const out = makeArray(dtype, length);
  for (let i = 0; i < length; i++) {
    if (dtype === 'Int32Array') out[i] = Math.floor((next() - 0.5) * 2e6);
    else if (dtype === 'Uint8Array') out[i] = Math.floor(next() * 256);
    else if (exact) out[i] = Math.floor((next() - 0.5) * 2048) / 64;
    else out[i] = (next() - 0.5) * Math.exp((next() - 0.5) * 8);
  }
  return out;
}

/** Uneven lengths in [0, max] with zeros: rank r's length for `tag`. */
export function rankLength(seed: number, rank: number, tag: string, max = 9): number {
  const next = random(seed, rank, `${tag}/length`);
  return next() < 0.3 ? 0 : Math.floor(next() * (max + 1));
}

export function concat(dtype: DtypeName, parts: readonly CommData[]): CommData {
  const out = makeArray(dtype, parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function bytes(a: CommData): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The same type, length and bits (so -0 differs from 0 and NaN payloads count). */
export function sameBits(a: CommData, b: CommData): boolean {
  if (a.constructor !== b.constructor || a.length !== b.length) return false;
  const x = bytes(a);
  const y = bytes(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** FNV-1a over the type names and bytes of arrays: equal digests, identical results. */
export function digest(arrays: readonly CommData[]): string {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    for (const c of a.constructor.name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    for (const b of bytes(a)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

function show(a: CommData): string {
  const head = Array.from(a.slice(0, 8) as ArrayLike<number>).join(', ');
  return `${a.constructor.name}(${a.length}) [${head}${a.length > 8 ? ', ...' : ''}]`;
}

export class Checks {
  readonly failures: string[] = [];
  count = 0;

  ok(condition: boolean, what: string): void {
    this.count++;
    if (!condition) this.failures.push(what);
  }

  equalBits(actual: unknown, expected: CommData, what: string): void {
    const ok = ArrayBuffer.isView(actual) && sameBits(actual as CommData, expected);
    this.ok(ok, ok ? what : `${what}: got ${ArrayBuffer.isView(actual) ? show(actual as CommData) : String(actual)}, expected ${show(expected)}`);
  }

  /** `fn` throws an error of class `Kind` with exactly `message`. */
  throws(fn: () => unknown, Kind: ErrorConstructor, message: string | RegExp, what: string): void {
    try {
      fn();
      this.ok(false, `${what}: did not throw`);
    } catch (error) {
      this.matches(error, Kind, message, what);
    }
  }

  async rejects(promise: Promise<unknown>, Kind: ErrorConstructor, message: string | RegExp, what: string): Promise<void> {
    try {
      await promise;
      this.ok(false, `${what}: did not reject`);
    } catch (error) {
      this.matches(error, Kind, message, what);
    }
  }

  matches(error: unknown, Kind: ErrorConstructor, message: string | RegExp, what: string): void {
    const e = error as Error;
    const textOk = typeof message === 'string' ? e?.message === message : message.test(e?.message ?? '');
    this.ok(
      error instanceof Error && e.constructor === Kind && textOk,
      `${what}: got ${(e as Error)?.constructor?.name}: ${e?.message}; expected ${Kind.name}: ${message}`,
    );
  }

  report(fields: Record<string, unknown>): void {
    console.log(`MPI-RESULT ${JSON.stringify({ ...fields, checks: this.count, failures: this.failures })}`);
  }
}

/** The lines `MPI-RESULT {json}` in a job's output, one per rank, by rank. */
export function parseResults(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('MPI-RESULT '))
    .map((line) => JSON.parse(line.slice('MPI-RESULT '.length)) as Record<string, unknown>)
    .sort((a, b) => (a.rank as number) - (b.rank as number));
}
