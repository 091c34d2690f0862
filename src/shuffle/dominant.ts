// One label group G of about half the batch or more: linear constructions with the
// fewest same-label negatives, for the batches where cyclic shifts fall short
// (K > B - 2g + 1) but K is small next to B -- every large batch that needs them.
//
// G's g rows lie on one circle, G[0 .. g), the other m = B - g rows (Q) on another,
// Q[0 .. m). Round k (column k of pi) is a permutation built from rotations:
//
// g >= m (G is at least half): no permutation can send more than m rows of G outside G,
//   so each round has at least g - m same-label negatives, K (2g - B) in all; this
//   reaches it. With t_k = k, d_k = k + 1:
//     Q[j]  -> G[j + t_k]                                  (Q fills G's arc [t_k, t_k + m))
//     G[p]  -> Q[p - t_k - d_k]  when (p - t_k - d_k) mod g < m,
//              G[p - d_k]        otherwise                 (the rest of G's circle, g - m rows)
//   Q's negatives t_k, G's within-G shifts d_k and G's arcs t_k + d_k are distinct
//   across rounds while 2K - 1 <= g, so each row's K negatives are distinct; d_k != 0
//   keeps G[p] off itself.
// g < m (near half: B - 2g + 1 < K): no same-label negative at all. Q is laid out group
//   after group, largest first, so its last L = m - g rows (F) come from its smallest
//   groups; the first g (V) pair with G:
//     G[p]  -> Q[p + a_k]      (G fills Q's arc [a_k, a_k + g))
//     Q[x]  -> Q[x + a_k]      for x in [g, m) (F fills the rest of Q's circle)
//     Q[j]  -> G[j + k]        for j in [0, g)
//   with K distinct shifts a_k that carry every F row out of its own group (found by
//   marking the bad ones); undefined when fewer than K exist.
import type { SeededRandom } from '../random';
import type { LabelGroups, Negatives } from './groups';

function largestGroup(groups: LabelGroups): number {
  let best = 0;
  for (let q = 1; q < groups.count; q++)
    if (groups.start[q + 1] - groups.start[q] > groups.start[best + 1] - groups.start[best]) best = q;
  return best;
}

/** G >= half: K (2g - B) same-label negatives, the fewest possible. Needs 2K - 1 <= g.
 * Written row by row (one cache line a row; the reads run along the circles). */
function dominantMajority(g: Int32Array, q: Int32Array, k: number): Negatives {
  const [ng, nq] = [g.length, q.length];
  const pi = new Int32Array((ng + nq) * k);
  for (let j = 0; j < nq; j++) {
    const base = q[j] * k;
    for (let r = 0; r < k; r++) pi[base + r] = g[(j + r) % ng]; // t_r = r
  }
  let sameLabelRows = 0;
  for (let p = 0; p < ng; p++) {
    const base = g[p] * k;
    let same = false;
    for (let r = 0; r < k; r++) {
      const u = (((p - 2 * r - 1) % ng) + ng) % ng; // p - t_r - d_r, d_r = r + 1
      if (u < nq) pi[base + r] = q[u];
      else {
        pi[base + r] = g[(((p - r - 1) % ng) + ng) % ng];
        same = true;
      }
    }
    if (same) sameLabelRows++;
  }
  return { pi, sameLabelRows, sameLabelNegatives: k * (ng - nq) };
}

/** G below half: no same-label negative, or undefined when too few shifts carry F out
 * of its groups. blockOf(x): the arc [from, to) of Q[x]'s group on Q's circle. */
function dominantNearHalf(g: Int32Array, q: Int32Array, blockOf: (x: number) => [number, number], k: number, random: SeededRandom): Negatives | undefined {
  const [ng, nq] = [g.length, q.length];
  if (k > ng) return undefined;
  // bad[a] > 0: shift a sends some F row into its own group (a = 0 included).
  const diff = new Int32Array(nq + 1);
  const mark = (from: number, to: number) => {
    // the cyclic interval [from, to) of shifts, from, to in (-nq, 2 nq)
    const lo = ((from % nq) + nq) % nq;
    const len = to - from;
    if (lo + len <= nq) {
      diff[lo]++;
      diff[lo + len]--;
    } else {
      diff[lo]++;
      diff[nq]--;
      diff[0]++;
      diff[lo + len - nq]--;
    }
  };
  for (let x = ng; x < nq; x++) {
    const [lo, hi] = blockOf(x);
    mark(lo - x, hi - x);
  }
  const good = new Int32Array(nq);
  let count = 0;
  for (let a = 0, bad = 0; a < nq; a++) {
    bad += diff[a];
    if (bad === 0) good[count++] = a;
  }
  if (count < k) return undefined;
  for (let i = 0; i < k; i++) {
    const j = i + random.below(count - i);
    const t = good[i];
    good[i] = good[j];
    good[j] = t;
  }
  const a = good.subarray(0, k);
  const pi = new Int32Array((ng + nq) * k);
  for (let p = 0; p < ng; p++) {
    const base = g[p] * k;
    for (let r = 0; r < k; r++) pi[base + r] = q[(p + a[r]) % nq];
  }
  for (let x = 0; x < nq; x++) {
    const base = q[x] * k;
    if (x < ng) for (let r = 0; r < k; r++) pi[base + r] = g[(x + r) % ng];
    else for (let r = 0; r < k; r++) pi[base + r] = q[(x + a[r]) % nq];
  }
  return { pi, sameLabelRows: 0, sameLabelNegatives: 0 };
}

/** pi with the fewest same-label negatives from the two-circle constructions, or
 * undefined where they do not apply (the caller then uses the general construction). */
export function dominantGroupNegatives(groups: LabelGroups, k: number, random: SeededRandom): Negatives | undefined {
  const { order, start, count } = groups;
  const batch = order.length;
  const big = largestGroup(groups);
  const g = order.subarray(start[big], start[big + 1]);
  const ng = g.length;
  const nq = batch - ng;
  if (nq === 0) return undefined;
  if (ng >= nq) {
    if (2 * k - 1 > ng) return undefined;
    const q = new Int32Array(nq);
    q.set(order.subarray(0, start[big]));
    q.set(order.subarray(start[big + 1]), start[big]);
    return dominantMajority(g, q, k);
  }
  // Q group after group, largest first (a stable counting sort by size keeps the random
  // order among groups of one size).
  const bySize = new Int32Array(ng + 2);
  for (let p = 0; p < count; p++) if (p !== big) bySize[ng - (start[p + 1] - start[p]) + 1]++;
  for (let s = 0; s <= ng; s++) bySize[s + 1] += bySize[s];
  const groupsInOrder = new Int32Array(count - 1);
  for (let p = 0; p < count; p++) if (p !== big) groupsInOrder[bySize[ng - (start[p + 1] - start[p])]++] = p;
  const q = new Int32Array(nq);
  const arcStart = new Int32Array(count - 1);
  let x = 0;
  for (let i = 0; i < count - 1; i++) {
    const p = groupsInOrder[i];
    arcStart[i] = x;
    q.set(order.subarray(start[p], start[p + 1]), x);
    x += start[p + 1] - start[p];
  }
  // The arc of Q[x]'s group, for the F rows (the tail): walk the groups from the end.
  const arcOf = new Int32Array(2 * nq - 2 * ng);
  for (let i = count - 2, y = nq; y > ng; i--) {
    const from = arcStart[i];
    for (; y > Math.max(from, ng); y--) {
      arcOf[2 * (y - 1 - ng)] = from;
      arcOf[2 * (y - 1 - ng) + 1] = i + 1 < count - 1 ? arcStart[i + 1] : nq;
    }
  }
  return dominantNearHalf(g, q, (y) => [arcOf[2 * (y - ng)], arcOf[2 * (y - ng) + 1]], k, random);
}
