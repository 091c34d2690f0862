// The rows of a batch grouped by label, in random order: the arrangement the
// constructions of modalityShuffle start from. Linear time and memory, and kind to the
// cache at B = 10^7: a radix sort of (key, row) pairs by a seeded bijection of the label
// (groups land in an order that changes with the seed and says nothing of label values),
// then a shuffle of the rows within each group.
import type { SeededRandom } from '../random';

export interface LabelGroups {
  /** all rows, those of one label together: groups in seeded random order, rows shuffled within */
  order: Int32Array;
  /** group q holds order[start[q] .. start[q + 1]) (length count + 1) */
  start: Int32Array;
  /** number of groups */
  count: number;
  /** size of the largest group */
  largest: number;
}

/** What every construction returns: pi (B x K) and how many of its negatives (and rows
 * with at least one) share their row's label. */
export interface Negatives {
  pi: Int32Array;
  sameLabelRows: number;
  sameLabelNegatives: number;
}

/** A bijection of the 32-bit integers chosen by two seeds (xor, xorshift-multiply rounds
 * and an add, each invertible): distinct labels keep distinct keys. */
function mixer(s1: number, s2: number): (x: number) => number {
  return (x) => {
    x ^= s1;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    x ^= x >>> 16;
    return (x + s2) >>> 0;
  };
}

/** (key, row) pairs, interleaved, sorted by key (stable): three counting passes over
 * 11-, 11- and 10-bit digits. Each pair moves as one 8-byte unit: one cache line a write. */
function sortPairs(pairs: Uint32Array): Uint32Array {
  const n = pairs.length >> 1;
  let src: Uint32Array = pairs;
  let dst: Uint32Array = new Uint32Array(pairs.length);
  const counts = new Int32Array(2049);
  for (const [shift, bits] of [[0, 11], [11, 11], [22, 10]]) {
    const mask = (1 << bits) - 1;
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[((src[2 * i] >>> shift) & mask) + 1]++;
    for (let d = 0; d < mask + 1; d++) counts[d + 1] += counts[d];
    for (let i = 0; i < n; i++) {
      const key = src[2 * i];
      const at = 2 * counts[(key >>> shift) & mask]++;
      dst[at] = key;
      dst[at + 1] = src[2 * i + 1];
    }
    [src, dst] = [dst, src];
  }
  return src;
}

/** Shuffles a[from .. to) uniformly. Long ranges by Rao and Sandelius's method: every
 * element to one of 1024 buckets at random (1024 sequential write streams), then a
 * Fisher-Yates shuffle inside each bucket, which fits in cache -- several times faster
 * than Fisher-Yates's random accesses over 40 MB. */
export function shuffleRange(a: Int32Array, from: number, to: number, random: SeededRandom): void {
  const n = to - from;
  if (n < 1 << 16) return random.shuffle(a, from, to);
  const bucket = new Uint16Array(n);
  const next = new Int32Array(1025);
  for (let i = 0; i < n; i++) {
    const b = random.uint32() >>> 22;
    bucket[i] = b;
    next[b + 1]++;
  }
  for (let b = 0; b < 1024; b++) next[b + 1] += next[b];
  const start = next.slice();
  const scattered = new Int32Array(n);
  for (let i = 0; i < n; i++) scattered[next[bucket[i]]++] = a[from + i];
  for (let b = 0; b < 1024; b++) random.shuffle(scattered, start[b], start[b + 1]);
  a.set(scattered, from);
}

/** A uniformly random permutation of 0..n-1. */
export function randomOrder(n: number, random: SeededRandom): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  shuffleRange(order, 0, n, random);
  return order;
}

export function groupRows(labels: Int32Array, random: SeededRandom): LabelGroups {
  const n = labels.length;
  const mix = mixer(random.uint32(), random.uint32());
  const pairs = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    pairs[2 * i] = mix(labels[i]);
    pairs[2 * i + 1] = i;
  }
  const sorted = sortPairs(pairs);
  const order = new Int32Array(n);
  const runStart = new Int32Array(n + 1);
  let count = 0;
  let largest = 0;
  for (let p = 0; p < n; p++) {
    order[p] = sorted[2 * p + 1];
    if (p === 0 || sorted[2 * p] !== sorted[2 * p - 2]) {
      if (count > 0) largest = Math.max(largest, p - runStart[count - 1]);
      runStart[count++] = p;
    }
  }
  largest = Math.max(largest, n - runStart[count - 1]);
  runStart[count] = n;
  for (let q = 0; q < count; q++) if (runStart[q + 1] - runStart[q] > 1) shuffleRange(order, runStart[q], runStart[q + 1], random);
  return { order, start: runStart.slice(0, count + 1), count, largest };
}

/** The group of every row: groupOf[row] = q for the rows of order[start[q] .. start[q + 1]). */
export function groupIndex({ order, start, count }: LabelGroups): Int32Array {
  const groupOf = new Int32Array(order.length);
  for (let q = 0; q < count; q++) for (let p = start[q]; p < start[q + 1]; p++) groupOf[order[p]] = q;
  return groupOf;
}
