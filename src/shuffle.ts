// modalityShuffle: which other video's visuals each row's modality-shuffled negatives
// use. Returns pi as a B x K Int32Array, pi[i * K + k] = pi_k(i), such that
//   - every column pi_k is a permutation of 0..B-1 with no fixed point;
//   - each row's K negatives are distinct;
//   - with labels, as few negatives as possible share their row's label: none whenever
//     K such permutations exist (always when K <= B - 2g + 1, g the largest label group,
//     and in many more cases, e.g. two groups of B/2 and K <= B/2);
//   - the same seed gives the same result on every platform; no seed, a fresh one.
//
// Three constructions (src/shuffle/), each reaching the optimum where it is used:
// - shifts.ts: cyclic shifts of the rows laid out by label, whenever K <= B - 2g + 1 --
//   every batch without labels or with small label groups. Linear.
// - dominant.ts: one group of about half the batch or more and K small next to B:
//   rotations of two circles (the group, the rest). Linear.
// - exact.ts: everything else (K a sizable share of B): a min-cost transport plan
//   between label classes, realised as a K-regular graph of (row, negative) pairs and
//   split into K permutations by random-walk matchings, O(B K log B) expected.
import { MAX_TYPED_LENGTH } from './defaults';
import { invalidParameterError } from './errors';
import { freshSeed, seededRandom } from './random';
import { exactNegatives } from './shuffle/exact';
import { dominantGroupNegatives } from './shuffle/dominant';
import { groupRows, type Negatives, randomOrder } from './shuffle/groups';
import { shiftNegatives } from './shuffle/shifts';
import type { ModalityShuffleOptions } from './types';
import { positiveInteger, requireKnownKeys, requireLength, requireObject } from './validate';

/** modalityShuffle's result: pi, plus how far labels could be avoided, and the seed. */
export type ModalityShuffleResult = Int32Array & {
  /** rows with at least one negative of their own label (0 when all were avoided) */
  readonly sameLabelRows: number;
  /** entries of pi that share their row's label: the fewest any K derangements allow */
  readonly sameLabelNegatives: number;
  /** the seed the result came from (options.seed, or the one drawn): pass it to replay */
  readonly seed: number;
};


/**
 * The rows whose visuals give each row its K modality-shuffled negatives:
 * pi[i * K + k] = pi_k(i), a B x K Int32Array. Every column is a permutation of 0..B-1
 * with no fixed point, every row's K negatives are distinct, and with `labels` as few as
 * possible share the row's label (none whenever K such permutations exist).
 * `pi.sameLabelRows` / `pi.sameLabelNegatives` say how many rows / entries could not
 * avoid it (0 when all did), `pi.seed` the seed used (read-only, non-enumerable).
 * RangeError when k >= batch; without `seed`, a fresh random one every call.
 */
export function modalityShuffle(batch: number, options: ModalityShuffleOptions = {}): ModalityShuffleResult {
  positiveInteger(batch, 'batch');
  if (batch < 2)
    throw invalidParameterError('batch', 'at least 2 (a row cannot be its own shuffled negative)', batch, RangeError);
  if (batch > 2 ** 31 - 1) throw invalidParameterError('batch', 'at most 2147483647 (rows are numbered in int32)', batch, RangeError);
  const opt = { ...requireObject(options, 'options') };
  requireKnownKeys(opt, ['k', 'labels', 'seed'], 'options');
  const k = opt.k === undefined ? 1 : positiveInteger(opt.k, 'k');
  if (k >= batch)
    throw invalidParameterError('k', `at most ${batch - 1} (batch - 1: K distinct negatives, none the row itself)`, k, RangeError);
  if (batch * k > MAX_TYPED_LENGTH)
    throw invalidParameterError('k', `at most ${Math.floor(MAX_TYPED_LENGTH / batch)} (batch * k entries must fit in one Int32Array)`, k, RangeError);
  const given = opt.seed;
  if (given !== undefined && (typeof given !== 'number' || !Number.isInteger(given)))
    throw invalidParameterError('seed', 'an integer', given, typeof given === 'number' ? RangeError : TypeError);
  const seed = given ?? freshSeed();
  const labels = opt.labels;
  if (labels !== undefined) {
    if (!(labels instanceof Int32Array)) throw invalidParameterError('labels', 'an Int32Array', labels);
    requireLength(labels, batch, 'labels', 'batch');
  }

  const random = seededRandom(seed);
  let negatives: Negatives;
  if (!labels) negatives = shiftNegatives(randomOrder(batch, random), k, 1, random);
  else {
    const groups = groupRows(labels, random);
    if (k <= batch - 2 * groups.largest + 1) negatives = shiftNegatives(groups.order, k, groups.largest, random);
    else if (groups.count === 1) {
      // One label: every negative shares it, whatever pi is.
      negatives = { ...shiftNegatives(groups.order, k, 1, random), sameLabelRows: batch, sameLabelNegatives: batch * k };
    } else negatives = dominantGroupNegatives(groups, k, random) ?? exactNegatives(groups, k, random);
  }
  const { pi, sameLabelRows, sameLabelNegatives } = negatives;
  const result = pi as ModalityShuffleResult;
  for (const [name, value] of [['sameLabelRows', sameLabelRows], ['sameLabelNegatives', sameLabelNegatives], ['seed', seed]] as const)
    Object.defineProperty(result, name, { value, enumerable: false, writable: false, configurable: false });
  return result;
}
