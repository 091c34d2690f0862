// The rows of a batch grouped by label, in random order: the arrangement the
// constructions of modalityShuffle start from. Linear time and memory: a two-pass radix
// sort of the row numbers by label (16 bits a pass), then shuffles.
import type { SeededRandom } from '../random';

export interface LabelGroups {
  /** all rows, those of one label together: groups in random order, rows shuffled within */
  order: Int32Array;
  /** group q holds order[start[q] .. start[q + 1]) (length count + 1) */
  start: Int32Array;
  /** the group of every row (an index into start) */
  groupOf: Int32Array;
  /** number of groups */
  count: number;
  /** size of the largest group */
  largest: number;
}

/** Row numbers sorted by label (stable): two counting passes over 16-bit digits, the
 * keys moved along with the rows so that every pass reads its input in order. */
function sortByLabel(labels: Int32Array): { rows: Int32Array; keys: Uint32Array } {
  const n = labels.length;
  let rows = new Int32Array(n);
  let keys = new Uint32Array(n);
  // Signed to unsigned order: flipping the sign bit makes -2^31 the smallest key.
  for (let i = 0; i < n; i++) {
    rows[i] = i;
    keys[i] = (labels[i] ^ 0x80000000) >>> 0;
  }
  let rowsOut = new Int32Array(n);
  let keysOut = new Uint32Array(n);
  const counts = new Int32Array(65537);
  for (let shift = 0; shift <= 16; shift += 16) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[((keys[i] >>> shift) & 0xffff) + 1]++;
    for (let d = 0; d < 65536; d++) counts[d + 1] += counts[d];
    for (let i = 0; i < n; i++) {
      const at = counts[(keys[i] >>> shift) & 0xffff]++;
      rowsOut[at] = rows[i];
      keysOut[at] = keys[i];
    }
    [rows, rowsOut, keys, keysOut] = [rowsOut, rows, keysOut, keys];
  }
  return { rows, keys };
}

/** A random permutation of 0..n-1. */
export function randomOrder(n: number, random: SeededRandom): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  random.shuffle(order);
  return order;
}

export function groupRows(labels: Int32Array, random: SeededRandom): LabelGroups {
  const batch = labels.length;
  const { rows: sorted, keys } = sortByLabel(labels);
  // Runs of equal labels: run r is sorted[runStart[r] .. runStart[r + 1]).
  const runStart = new Int32Array(batch + 1);
  let count = 0;
  for (let p = 0; p < batch; p++) if (p === 0 || keys[p] !== keys[p - 1]) runStart[count++] = p;
  runStart[count] = batch;

  // Lay the runs out in random order, each shuffled.
  const runs = randomOrder(count, random);
  const order = new Int32Array(batch);
  const start = new Int32Array(count + 1);
  const groupOf = new Int32Array(batch);
  let largest = 0;
  let p = 0;
  for (let q = 0; q < count; q++) {
    const r = runs[q];
    start[q] = p;
    for (let s = runStart[r]; s < runStart[r + 1]; s++) {
      order[p++] = sorted[s];
      groupOf[sorted[s]] = q;
    }
    if (p - start[q] > 1) random.shuffle(order, start[q], p);
    if (p - start[q] > largest) largest = p - start[q];
  }
  start[count] = batch;
  return { order, start, groupOf, count, largest };
}
