// Defaults shared by every function that takes them.

/** tau of the loss, `similarity` and `shuffledLogits` when not given. */
export const DEFAULT_TEMPERATURE = 0.05;

/** Logits |c| / tau and gradients are refused beyond this (docs/math.md §4): float32
 * holds up to 3.4e38, and the sums over a batch need room. */
export const REPRESENTABLE_LIMIT = 1e30;
