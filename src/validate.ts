// Argument checks with user-facing wording (one formatter: errors.ts). The binding
// re-checks kinds and sizes for memory safety only, so these are the checks users read.
import { Described, invalidParameterError } from './errors';
import type { Backend, Precision } from './types';

export function requireObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value))
    throw invalidParameterError(name, 'an object', value);
  return value as Record<string, unknown>;
}

/** Edit distance of two short names (for "did you mean"). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/**
 * Unknown property names are a TypeError naming them (a typo must not train silently):
 * "Expected one of the options temperature, alpha, ... (did you mean 'temperature'?) for
 * options.temprature but received 5 of type number". A name that belongs in the other
 * argument (`misplaced`: an option among the inputs, or the reverse) says so.
 */
export function requireKnownKeys(
  value: Record<string, unknown>,
  known: readonly string[],
  name: string,
  misplaced?: { keys: readonly string[]; where: string },
): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key) || value[key] === undefined) continue;
    let hint = '';
    if (misplaced?.keys.includes(key)) hint = ` (${key} belongs in ${misplaced.where})`;
    else {
      let best = '';
      let bestDistance = Infinity;
      for (const k of known) {
        const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(k, key);
        if (d < bestDistance) [best, bestDistance] = [k, d];
      }
      if (bestDistance <= Math.max(2, Math.floor(key.length / 3))) hint = ` (did you mean '${best}'?)`;
    }
    throw invalidParameterError(`${name}.${key}`, `one of the ${name} ${known.join(', ')}${hint}`, value[key]);
  }
}

export function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidParameterError(name, 'a positive integer', value);
  if (!Number.isSafeInteger(value) || value < 1) throw invalidParameterError(name, 'a positive integer', value, RangeError);
  return value;
}

export function optionalNumber(value: unknown, name: string, rule: 'positive' | 'nonnegative' | 'finite'): void {
  if (value === undefined) return;
  const expected =
    rule === 'positive' ? 'a finite number > 0' : rule === 'nonnegative' ? 'a finite number >= 0' : 'a finite number';
  if (typeof value !== 'number') throw invalidParameterError(name, expected, value);
  const ok = Number.isFinite(value) && (rule === 'finite' || (rule === 'positive' ? value > 0 : value >= 0));
  if (!ok) throw invalidParameterError(name, expected, value, RangeError);
}

export function optionalBoolean(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw invalidParameterError(name, 'a boolean', value);
}

export function optionalChoice<T extends string>(value: unknown, name: string, choices: readonly T[]): void {
  if (value === undefined) return;
  const expected = `one of ${choices.map((c) => `'${c}'`).join(', ')}`;
  if (typeof value !== 'string') throw invalidParameterError(name, expected, value);
  if (!choices.includes(value as T)) throw invalidParameterError(name, expected, new Described(`'${value}'`), RangeError);
}

export const BACKENDS: readonly Backend[] = ['auto', 'cpu', 'cuda'];
export const PRECISIONS: readonly Precision[] = ['fp32', 'tf32', 'bf16'];

export function requireLength(data: ArrayLike<unknown>, length: number, name: string, shape: string): void {
  if (data.length !== length)
    throw invalidParameterError(name, `a length of ${length} (${shape})`, new Described(`length ${data.length}`), RangeError);
}

export function optionalThreads(value: unknown): void {
  if (value !== undefined) positiveInteger(value, 'threads');
}
