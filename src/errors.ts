// The one wording for bad arguments: "Expected <expected> for <name> but received
// <actual>". Every user-facing check of the package words its error here (the native
// layer keeps terse memory-safety checks only: binding/convert.h).

export type ErrorClass = typeof TypeError | typeof RangeError;

const TypedArray = Object.getPrototypeOf(Uint8Array) as abstract new () => ArrayBufferView;

/** Describes a received value for an error message: its kind, and the value when short. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'Array';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  // A Proxy of a typed array passes instanceof but has none of its internal slots: V8's
  // own error ("incompatible receiver") would not say what is wrong.
  if (value instanceof TypedArray) return `a Proxy of a ${(value as object).constructor.name} (pass the array itself)`;
  if (typeof value === 'number') return `${value} of type number`;
  if (typeof value === 'string') return `'${value}' of type string`;
  if (typeof value === 'boolean') return `${value} of type boolean`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return `a ${typeof value}`;
}

/** A received value already put into words ("length 5"), used as is in the message. */
export class Described {
  constructor(readonly text: string) {}
}

export function invalidParameterError(
  name: string,
  expected: string,
  actual: unknown,
  Kind: ErrorClass = TypeError,
): Error {
  const received = actual instanceof Described ? actual.text : describe(actual);
  return new Kind(`Expected ${expected} for ${name} but received ${received}`);
}
