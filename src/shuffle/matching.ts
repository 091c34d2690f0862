// Splitting a K-regular bipartite graph (rows -> negatives) into K permutations.
//
// A d-regular bipartite graph always has a perfect matching (Hall), and removing one
// leaves a (d - 1)-regular graph (Koenig), so K perfect matchings found one after the
// other are the K columns of the result. Each is found by Goel, Kapralov and Khanna's
// random walks ("Perfect matchings in O(n log n) time in regular bipartite graphs",
// STOC 2010): a greedy pass matches most rows; from each row left over, walk
// row -> random non-matching edge -> its column -> that column's row ... until a free
// column, then flip the matching along the walk with its loops erased (following each
// row's last exit). Expected O(B log B) steps a matching, whatever d.
import type { SeededRandom } from '../random';

/**
 * adj: B x K, row i's K distinct neighbours in adj[i * K .. i * K + K), every column
 * appearing K times in all (it is reordered in place). Returns pi, B x K:
 * pi[i * K + r] is row i's partner in matching r.
 */
export function splitIntoPermutations(adj: Int32Array, batch: number, k: number, random: SeededRandom): Int32Array {
  const out = new Int32Array(batch * k);
  const mateOfRow = new Int32Array(batch);
  const mateOfCol = new Int32Array(batch);
  const matchedAt = new Int32Array(batch); // index in the row's list of its matched edge
  const lastExit = new Int32Array(batch);
  const order = new Int32Array(batch);
  const free = new Int32Array(batch);
  for (let i = 0; i < batch; i++) order[i] = i;

  for (let r = 0; r < k; r++) {
    const d = k - r; // each row's remaining edges: adj[i * k .. i * k + d)
    mateOfRow.fill(-1);
    mateOfCol.fill(-1);
    random.shuffle(order);
    let freeCount = 0;
    for (let n = 0; n < batch; n++) {
      // Up to 32 of the row's edges, in memory order from a random one (scanning all d
      // would cost B d per matching; the walks below take what this pass leaves).
      const u = order[n];
      const base = u * k;
      let j = random.below(d);
      for (let tries = Math.min(d, 32); tries > 0; tries--) {
        const v = adj[base + j];
        if (mateOfCol[v] < 0) {
          mateOfRow[u] = v;
          mateOfCol[v] = u;
          matchedAt[u] = j;
          break;
        }
        j = j + 1 === d ? 0 : j + 1;
      }
      if (mateOfRow[u] < 0) free[freeCount++] = u;
    }

    // The walks take O(B log B) steps in expectation; this many means a broken graph.
    let budget = 64 * batch * (Math.log2(batch) + 8) + 1e6;
    while (freeCount > 0) {
      const pick = random.below(freeCount);
      const start = free[pick];
      free[pick] = free[--freeCount];
      // The walk. A row reached through its matched column leaves by one of its other
      // d - 1 edges; the start row (unmatched) by any of its d.
      let u = start;
      for (;;) {
        let j: number;
        if (mateOfRow[u] < 0) j = random.below(d);
        else {
          j = random.below(d - 1);
          if (j >= matchedAt[u]) j++;
        }
        lastExit[u] = j;
        if (--budget < 0) throw new Error('modalityShuffle: found no perfect matching (internal error: the graph is not regular)');
        const next = mateOfCol[adj[u * k + j]];
        if (next < 0) break;
        u = next;
      }
      // Flip along the loop-erased walk: from the start, each row's last exit.
      u = start;
      for (;;) {
        const j = lastExit[u];
        const v = adj[u * k + j];
        const next = mateOfCol[v];
        mateOfCol[v] = u;
        mateOfRow[u] = v;
        matchedAt[u] = j;
        if (next < 0) break;
        u = next;
      }
    }

    // Record matching r and take its edges out of the lists (swap to the end).
    for (let u = 0; u < batch; u++) {
      out[u * k + r] = mateOfRow[u];
      const a = u * k + matchedAt[u];
      const b = u * k + d - 1;
      const t = adj[a];
      adj[a] = adj[b];
      adj[b] = t;
    }
  }
  return out;
}
