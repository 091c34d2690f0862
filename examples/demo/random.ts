// Seeded randomness for the demo: one stream per purpose, so that changing one part
// (say, the number of test queries) never reshuffles another (the videos).

import { mulberry32 } from '../../src/random';

export interface Random {
  /** uniform in [0, 1) */
  (): number;
}

/** mulberry32: small, fast, good enough for data generation. */
export const rng: (seed: number) => Random = mulberry32;

/** A stream derived from a seed and a purpose name. */
export function stream(seed: number, purpose: string): Random {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < purpose.length; i++) h = Math.imul(h ^ purpose.charCodeAt(i), 16777619);
  return rng(h >>> 0);
}

export function randInt(random: Random, n: number): number {
  return Math.floor(random() * n);
}

export function gaussian(random: Random): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** k distinct items of 0..n-1 (k <= n), in random order. */
export function sampleDistinct(random: Random, n: number, k: number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < k) chosen.add(randInt(random, n));
  return [...chosen];
}

export function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randInt(random, i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Sampling from fixed weights by binary search over the cumulative sum. */
export function categorical(weights: number[]): (random: Random) => number {
  const cumulative: number[] = [];
  let total = 0;
  for (const w of weights) cumulative.push((total += w));
  return (random) => {
    const x = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}
