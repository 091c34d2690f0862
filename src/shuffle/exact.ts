// The general construction: the fewest same-label negatives any K derangements allow,
// for every batch (the cyclic shifts of shifts.ts cover K <= B - 2g + 1 only).
//
// Read the result as a K-regular bipartite graph H, row -> negative, with no edge i -> i.
// Any such H splits into K permutations (matching.ts), so the task is to build one with
// the fewest edges inside a label group:
//
// 1. Classes. Groups of more than (B - K) / 2 rows are classes of their own; the smaller
//    groups share one class, the pool, inside which the plan counts every edge as free.
// 2. The plan (transport.ts): x[a][b] edges from class a to class b, fewest inside a
//    group first, then fewest inside the pool. Treating the pool's groups as one class
//    of distinct labels relaxes the problem, so the plan's count is at most the optimum;
//    when step 3 builds it (the pool's band leaving every group), the result has exactly
//    that count, hence is optimal. When the band cannot hold the pool's share, the pool's
//    largest group becomes a class of its own and the plan is made again (with every
//    group its own class, step 3 always succeeds). An exhaustive search up to B = 13 found
//    no batch where the (B - K) / 2 split loses anything, so promotions are rare.
// 3. H from the plan, every row and column getting exactly K edges:
//    - inside class c (x_cc = q n + e edges, n rows): a band, row u -> the next
//      q + [u < e] rows after skipping o, i.e. u + o, u + o + 1, ... (mod n), with o = 1
//      for a group (never u itself) and o = the pool's largest group for the pool (the
//      pool's rows lie group after group, so the band leaves each row's group). Columns
//      (o + q + [0, e)) then hold q + 1 of these edges, the others q;
//    - between classes: row u of class a deals its remaining K - q - [u < e] slots out
//      round robin (starting at row e, so each row ends with exactly K); column side,
//      class b's columns are filled as one cyclic stream starting right after the band's
//      fuller columns, so each column ends with exactly K; within block (a, b), each row
//      takes a run of consecutive stream positions, at most ceil(x_ab / n_a) <= n_b of
//      them, so its columns are distinct.
import type { SeededRandom } from '../random';
import { groupIndex, type LabelGroups, type Negatives } from './groups';
import { splitIntoPermutations } from './matching';
import { solveTransport } from './transport';

interface RowClass {
  /** the class's rows, in the order the band and the streams use */
  rows: Int32Array;
  /** band offset: 1 for a group, the largest group's size for the pool */
  offset: number;
  pool: boolean;
}

/** The classes, with the pool's largest `promoted` groups given classes of their own. */
function makeClasses(groups: LabelGroups, k: number, promoted: number): RowClass[] {
  const batch = groups.order.length;
  const size = (q: number) => groups.start[q + 1] - groups.start[q];
  const threshold = (batch - k) / 2;
  const bySize = Array.from({ length: groups.count }, (_, q) => q).sort((p, q) => size(q) - size(p));
  let own = 0;
  while (own < bySize.length && size(bySize[own]) > threshold) own++;
  own = Math.min(bySize.length, own + promoted);
  const classes: RowClass[] = [];
  for (let c = 0; c < own; c++) {
    const q = bySize[c];
    classes.push({ rows: groups.order.subarray(groups.start[q], groups.start[q + 1]), offset: 1, pool: false });
  }
  if (own < bySize.length) {
    // The pool keeps the grouped order (each group contiguous), its groups in random order.
    const poolGroups = bySize.slice(own).sort((p, q) => p - q);
    const rows = new Int32Array(poolGroups.reduce((n, q) => n + size(q), 0));
    let p = 0;
    for (const q of poolGroups) {
      rows.set(groups.order.subarray(groups.start[q], groups.start[q + 1]), p);
      p += size(q);
    }
    classes.push({ rows, offset: size(bySize[own]), pool: true });
  }
  return classes;
}

/** The plan for these classes, or undefined when the pool's band could not hold it. */
function plan(classes: RowClass[], k: number): Float64Array | undefined {
  const C = classes.length;
  const sizes = classes.map((c) => c.rows.length);
  const poolSize = classes.find((c) => c.pool)?.rows.length ?? 0;
  // Lexicographic costs: any edge inside a group outweighs all edges inside the pool.
  const groupEdge = poolSize * poolSize + 1;
  const x = solveTransport({
    sizes,
    k,
    diagCap: sizes.map((n) => n * (n - 1)),
    diagCost: classes.map((c) => (c.pool ? 1 : groupEdge)),
  });
  const last = classes[C - 1];
  if (last.pool) {
    // The band row u -> u + o .. u + o + r - 1 leaves u's group when r <= n - 2o + 1.
    const n = last.rows.length;
    const inside = x[(C - 1) * C + (C - 1)];
    if (inside > 0 && Math.ceil(inside / n) > n - 2 * last.offset + 1) return undefined;
  }
  return x;
}

/** H as adjacency lists (B x K), from the classes and the plan. */
function buildGraph(classes: RowClass[], x: Float64Array, batch: number, k: number): Int32Array {
  const C = classes.length;
  const adj = new Int32Array(batch * k);
  const filled = new Int32Array(batch);
  const add = (row: number, col: number) => {
    adj[row * k + filled[row]++] = col;
  };
  const q = new Float64Array(C);
  const e = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const { rows, offset } = classes[c];
    const n = rows.length;
    const inside = x[c * C + c];
    q[c] = Math.floor(inside / n);
    e[c] = inside - q[c] * n;
    for (let u = 0; u < n; u++) {
      const r = q[c] + (u < e[c] ? 1 : 0);
      for (let t = 0; t < r; t++) add(rows[u], rows[(u + offset + t) % n]);
    }
  }
  const streamAt = new Float64Array(C); // next position in each class's column stream
  for (let a = 0; a < C; a++) {
    const from = classes[a].rows;
    const na = from.length;
    let slot = 0; // next slot in class a's row-side deal
    for (let b = 0; b < C; b++) {
      const count = x[a * C + b];
      if (b === a || count === 0) continue;
      const to = classes[b].rows;
      const nb = to.length;
      const streamStart = (classes[b].offset + q[b] + e[b]) % nb;
      const each = Math.floor(count / na);
      const extra = count - each * na;
      const first = (e[a] + slot) % na;
      let position = streamAt[b];
      for (let j = 0; j < na && j < count; j++) {
        const u = (first + j) % na;
        const r = each + (j < extra ? 1 : 0);
        for (let t = 0; t < r; t++) add(from[u], to[(streamStart + position++) % nb]);
      }
      slot += count;
      streamAt[b] = position;
    }
  }
  for (let i = 0; i < batch; i++)
    if (filled[i] !== k) throw new Error(`modalityShuffle: row ${i} got ${filled[i]} of ${k} negatives (internal error)`);
  return adj;
}

/** pi (B x K) with the fewest same-label negatives possible, and their count. */
export function exactNegatives(groups: LabelGroups, k: number, random: SeededRandom): Negatives {
  const batch = groups.order.length;
  for (let promoted = 0; ; promoted++) {
    const classes = makeClasses(groups, k, promoted);
    const x = plan(classes, k);
    if (!x) continue;
    const pi = splitIntoPermutations(buildGraph(classes, x, batch, k), batch, k, random);
    // Count what could not be avoided (the plan says how many; the result says which rows).
    const groupOf = groupIndex(groups);
    let sameLabelRows = 0;
    let sameLabelNegatives = 0;
    for (let i = 0; i < batch; i++) {
      let same = 0;
      for (let j = i * k; j < i * k + k; j++) if (groupOf[pi[j]] === groupOf[i]) same++;
      sameLabelNegatives += same;
      if (same > 0) sameLabelRows++;
    }
    return { pi, sameLabelRows, sameLabelNegatives };
  }
}
