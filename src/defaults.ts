// Defaults shared by every function that takes them.

/** tau of the loss, `similarity` and `shuffledLogits` when not given. */
export const DEFAULT_TEMPERATURE = 0.05;

/** Dot products and gradients are refused beyond this (docs/math.md §4): float32 holds
 * up to 3.4e38, and the sums over a batch need room. */
export const REPRESENTABLE_LIMIT = 1e30;

/** Logits (|c| + |margin|) / tau that enter the loss's soft-maxes are refused beyond this
 * (docs/math.md §4): a float32 logit carries an absolute error of a few 6e-8 · |z|, which
 * moves the soft-max of tied or nearly tied entries. Up to 1e4 the loss and its gradients
 * stay within 1e-3 of the float64 oracle even when every entry ties; at 1e6 they are
 * already 3e-2 off, and wrong outright near 1e8. */
export const LOGIT_LIMIT = 1e4;

/** The most elements one typed array holds (V8, 64-bit). */
export const MAX_TYPED_LENGTH = 2 ** 32 - 1;
