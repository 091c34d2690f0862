// Argument checks with user-facing wording (one formatter: errors.ts). The binding
// re-checks kinds and sizes, so these exist for clear messages, early.
import { Described, invalidParameterError } from './errors';
import type { Backend, Precision } from './types';

export function requireObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value))
    throw invalidParameterError(name, 'an object', value);
  return value as Record<string, unknown>;
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
