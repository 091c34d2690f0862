// modalityShuffle: which other video's visuals each row's modality-shuffled negatives
// use. Returns pi as a B x K Int32Array, pi[i * K + k] = pi_k(i).
//
// Construction: an order sigma of the rows, random but with rows of one label kept
// together, and K distinct shifts s_k drawn from [g, B - g], g being the largest label
// group (1 without labels); then pi_k(sigma[p]) = sigma[(p + s_k) mod B]. A shift of at
// least g and at most B - g moves every row out of its own group, so pi_k(i) != i and
// labels[pi_k(i)] != labels[i]; distinct shifts give each row K distinct negatives
// (while K <= B - 2g + 1). If one label holds more than half the batch no such shift
// exists: then only pi_k(i) != i is guaranteed.
import { invalidParameterError } from './errors';
import { mulberry32 } from './random';
import type { ModalityShuffleOptions } from './types';
import { positiveInteger, requireLength, requireObject } from './validate';


function shuffleInPlace<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

export function modalityShuffle(batch: number, options: ModalityShuffleOptions = {}): Int32Array {
  positiveInteger(batch, 'batch');
  if (batch < 2)
    throw invalidParameterError('batch', 'at least 2 (a row cannot be its own shuffled negative)', batch, RangeError);
  const opt = requireObject(options, 'options');
  const k = opt.k === undefined ? 1 : positiveInteger(opt.k, 'k');
  const seed = opt.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed))
    throw invalidParameterError('seed', 'an integer', seed, typeof seed === 'number' ? RangeError : TypeError);
  const labels = opt.labels;
  if (labels !== undefined) {
    if (!(labels instanceof Int32Array)) throw invalidParameterError('labels', 'an Int32Array', labels);
    requireLength(labels, batch, 'labels', 'batch');
  }
  const random = mulberry32(seed);

  // sigma: groups of equal labels in random order, rows shuffled inside each group.
  const groups = new Map<number, number[]>();
  for (let i = 0; i < batch; i++) {
    const key = labels ? labels[i] : i;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(i);
  }
  const ordered = [...groups.values()];
  shuffleInPlace(ordered, random);
  for (const group of ordered) shuffleInPlace(group, random);
  const sigma = ordered.flat();
  let largest = Math.max(...ordered.map((g) => g.length));
  if (2 * largest > batch) largest = 1; // labels cannot all be avoided: keep pi(i) != i

  // K distinct shifts from [largest, batch - largest] (repeating once they run out).
  const shifts: number[] = [];
  for (let s = largest; s <= batch - largest; s++) shifts.push(s);
  shuffleInPlace(shifts, random);

  const position = new Int32Array(batch);
  sigma.forEach((row, p) => (position[row] = p));
  const out = new Int32Array(batch * k);
  for (let j = 0; j < k; j++) {
    const shift = shifts[j % shifts.length];
    for (let i = 0; i < batch; i++) out[i * k + j] = sigma[(position[i] + shift) % batch];
  }
  return out;
}
