// Seeded random numbers, the same on every platform (32-bit integer arithmetic only).
//
// - mulberry32: a tiny generator of floats in [0, 1), for the tests and the demo that
//   need reproducible data.
// - seededRandom: sfc32 (Chris Doty-Humphrey's small fast counter generator, 128 bits of
//   state) seeded from the whole of a JavaScript integer, for modalityShuffle: uniform
//   integers below a bound without bias, and in-place shuffles of typed arrays.
// - freshSeed: a seed from the operating system's cryptographic source, for calls that
//   give none.
import { randomInt } from 'node:crypto';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SeededRandom {
  /** a uniform 32-bit unsigned integer */
  uint32(): number;
  /** a uniform integer in [0, n), 1 <= n <= 2^32, without modulo bias */
  below(n: number): number;
  /** Fisher-Yates shuffle of a[from .. to) in place */
  shuffle(a: Int32Array, from?: number, to?: number): void;
}

const TWO32 = 4294967296;

/** splitmix32 step: spreads the seed's bits over the generator's state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * sfc32 seeded from an integer. Every integer a double holds exactly (|seed| < 2^53)
 * gives its own stream: the low and the high 32 bits both seed the state.
 */
export function seededRandom(seed: number): SeededRandom {
  const lo = ((seed % TWO32) + TWO32) % TWO32;
  const hi = ((Math.floor(seed / TWO32) % TWO32) + TWO32) % TWO32;
  const mix = { s: (lo ^ Math.imul(hi, 0x27d4eb2d)) | 0 };
  let a = splitmix32(mix) ^ hi;
  let b = splitmix32(mix);
  let c = splitmix32(mix);
  let d = 1;
  const uint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) uint32(); // discard the first outputs, as sfc32's author advises
  const below = (n: number): number => {
    // Rejection sampling: draws >= the largest multiple of n under 2^32 are redrawn.
    const limit = TWO32 - (TWO32 % n);
    let x = uint32();
    while (x >= limit) x = uint32();
    return x % n;
  };
  const shuffle = (arr: Int32Array, from = 0, to = arr.length): void => {
    for (let i = to - 1; i > from; i--) {
      const j = from + below(i - from + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
  };
  return { uint32, below, shuffle };
}

/** A fresh seed from the operating system's cryptographic source (0 <= seed < 2^48 - 1). */
export function freshSeed(): number {
  return randomInt(0, 2 ** 48 - 1);
}
