// Defaults shared by every function that takes them.

/** tau of the loss, `similarity` and `shuffledLogits` when not given. */
export const DEFAULT_TEMPERATURE = 0.05;

/** Dot products and gradients are refused beyond this (docs/math.md §4): float32 holds
 * up to 3.4e38, and the sums over a batch need room. */
export const REPRESENTABLE_LIMIT = 1e30;

/** Logits (|c| + |margin|) / tau are refused beyond this (docs/math.md §4): float32 logits
 * carry a relative error of 6e-8, which beyond ~1e11 moves the results by more than the
 * 1e-5 accuracy bound (measured against the float64 oracle). */
export const LOGIT_LIMIT = 1e10;
