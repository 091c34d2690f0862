// Cyclic shifts of the grouped order: the construction for every batch where
// K <= B - 2g + 1 (g the largest label group; g = 1 without labels).
//
// With the rows laid out on a circle, those of one label on an arc (LabelGroups.order),
// pi_k(order[p]) = order[(p + s_k) mod B]. A shift s with g <= s <= B - g carries every
// row off its own arc, so pi_k(i) != i and labels[pi_k(i)] != labels[i]; there are
// B - 2g + 1 such shifts, and K distinct ones give each row K distinct negatives. Each
// column is a rotation of the circle, so a permutation.
import type { SeededRandom } from '../random';
import type { Negatives } from './groups';

/** K distinct integers drawn from [lo, hi], in random order. */
function distinctDraws(lo: number, hi: number, k: number, random: SeededRandom): Int32Array {
  const range = hi - lo + 1;
  const out = new Int32Array(k);
  if (k * 4 >= range || range <= 1 << 16) {
    // A partial Fisher-Yates over the whole range: O(range), at most 4K or 65536.
    const all = new Int32Array(range);
    for (let i = 0; i < range; i++) all[i] = lo + i;
    for (let i = 0; i < k; i++) {
      const j = i + random.below(range - i);
      out[i] = all[j];
      all[j] = all[i];
    }
    return out;
  }
  // Few draws from a wide range: redraw the (rare) repeats.
  const seen = new Set<number>();
  for (let i = 0; i < k; ) {
    const s = lo + random.below(range);
    if (!seen.has(s)) {
      seen.add(s);
      out[i++] = s;
    }
  }
  return out;
}

/** pi (B x K, row-major) from K distinct shifts in [largest, B - largest]: no negative
 * shares its row's label (with largest = 1, labels are not looked at). */
export function shiftNegatives(order: Int32Array, k: number, largest: number, random: SeededRandom): Negatives {
  const batch = order.length;
  const shifts = distinctDraws(largest, batch - largest, k, random);
  const out = new Int32Array(batch * k);
  for (let p = 0; p < batch; p++) {
    const base = order[p] * k;
    for (let j = 0; j < k; j++) {
      let t = p + shifts[j];
      if (t >= batch) t -= batch;
      out[base + j] = order[t];
    }
  }
  return { pi: out, sameLabelRows: 0, sameLabelNegatives: 0 };
}
