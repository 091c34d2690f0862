// The checks on the values of the inputs (docs/math.md §4): every value finite, and
// logits and gradients that float32 can hold. The facts come from one native pass over
// each input (cpp/inspect.h); the rules and their wording are here.
import { LOGIT_LIMIT, REPRESENTABLE_LIMIT } from './defaults';
import { Described, invalidParameterError } from './errors';
import { native } from './native';

export interface RowFacts {
  /** index of the first NaN or infinity, -1 when every value is finite */
  firstNonFinite: number;
  nonFiniteValue: number;
  maxNorm: number;
  /** the smallest row norm (0 for a zero row) */
  minNorm: number;
  /** the largest sum x^4 / (sum x^2)^2 of a nonzero row (the bf16 rule's row shape) */
  maxFourth: number;
}

/** The facts of rows x dim values; a RangeError naming `name` at the first non-finite one. */
export function inspectFinite(data: Float32Array, rows: number, dim: number, name: string): RowFacts {
  const f = native().inspect(data, rows, dim);
  const facts: RowFacts = { firstNonFinite: f[0], nonFiniteValue: f[1], maxNorm: f[2], minNorm: f[3], maxFourth: f[4] };
  if (facts.firstNonFinite >= 0)
    throw invalidParameterError(name, 'finite numbers', new Described(`${facts.nonFiniteValue} at index ${facts.firstNonFinite}`), RangeError);
  return facts;
}

export interface Scales {
  normalize: boolean;
  temperature: number;
  /** the largest query row norm, and whose ['query'] */
  queryNorm: number;
  queryName?: string;
  /** the largest row norm of the documents the logits use, and whose */
  documentNorm: number;
  documentName: string;
  /** the largest |margin| */
  margin: number;
  /** the smallest row norm of any input (normalisation divides gradients by it) */
  minNorm: number;
  /** whether the logits enter soft-maxes (the loss: LOGIT_LIMIT applies) or are the result */
  softmax: boolean;
  /** the weights in use, by name */
  weights: Record<string, number>;
}

const LIMIT = REPRESENTABLE_LIMIT;
const fmt = (v: number) => (Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-4) ? v.toExponential(2) : String(Number(v.toPrecision(4))));

/**
 * RangeError, naming the argument most responsible, unless every logit |c| / tau (with the
 * margin) stays below the limit — LOGIT_LIMIT where the logits enter soft-maxes (the
 * loss), where float32 logits keep the accuracy bound; 1e30 where they are the result
 * (similarity and the like), each as accurate as float32 makes it — and every dot product
 * and gradient below 1e30, which float32 holds.
 */
export function requireRepresentable(s: Scales): void {
  const cosine = s.normalize ? 1 : s.queryNorm * s.documentNorm; // bounds |c|
  const logit = (cosine + s.margin) / s.temperature;
  const limit = s.softmax ? LOGIT_LIMIT : LIMIT;
  const c = s.normalize ? '|cosine|' : '|dot product|';
  const bound =
    `the logits ${s.softmax ? `(${c} + |margin|)` : c} / temperature must stay below ${limit.toExponential()}, ` +
    (s.softmax ? 'where float32 logits keep their accuracy in a soft-max' : 'which float32 holds with room for sums');
  if (!(logit <= limit && cosine + s.margin <= LIMIT)) {
    if (s.margin > cosine)
      throw invalidParameterError(
        'margin',
        `|margin| at most ${fmt(Math.max(0, Math.min(limit * s.temperature, LIMIT) - cosine))} at this temperature (${bound})`,
        new Described(`${fmt(s.margin)} with temperature ${fmt(s.temperature)}`),
        RangeError,
      );
    if (!s.normalize && cosine > 1)
      throw invalidParameterError(
        `${s.queryName ?? 'query'} and ${s.documentName}`,
        `rows whose dot products${s.margin ? ' (plus |margin|)' : ''} stay below ${LIMIT} (${bound}); pass normalize: true or rescale the rows`,
        new Described(
          `row norms up to ${fmt(s.queryNorm)} and ${fmt(s.documentNorm)}${s.margin ? `, |margin| up to ${fmt(s.margin)},` : ''} with temperature ${fmt(s.temperature)}`,
        ),
        RangeError,
      );
    throw invalidParameterError('temperature', `at least ${fmt((cosine + s.margin) / limit)} (${bound})`, s.temperature, RangeError);
  }
  // The kernels scale by 1 / tau, in float32 (tiny rows without normalisation can keep the
  // logits small while 1 / tau overflows).
  if (!(1 / s.temperature <= LIMIT))
    throw invalidParameterError('temperature', `at least ${fmt(1 / LIMIT)} (float32 must hold 1 / temperature)`, s.temperature, RangeError);
  // Gradients: up to (weight / B) * |x^| / tau per term, divided by the row norm in the
  // normalisation backward (docs/math.md §3.6).
  const divisor = s.normalize ? Math.max(s.minNorm, 1e-12) : 1;
  let heaviest = '';
  let weight = 1;
  for (const [name, w] of Object.entries(s.weights))
    if (w > weight) [heaviest, weight] = [name, w];
  if (!(weight * logit / divisor <= LIMIT)) {
    if (heaviest && logit / divisor <= LIMIT)
      throw invalidParameterError(
        heaviest,
        `at most ${fmt((LIMIT * divisor) / logit)} (heavier weights give gradients float32 cannot hold at this temperature)`,
        weight,
        RangeError,
      );
    throw invalidParameterError(
      'temperature',
      `at least ${fmt((weight * (cosine + s.margin)) / (LIMIT * divisor))} (smaller gives gradients float32 cannot hold, given the weights and the smallest row norm ${fmt(s.minNorm)})`,
      s.temperature,
      RangeError,
    );
  }
}
