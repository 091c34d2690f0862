// mbvrLoss / mbvrLossSync: the checks (loss-check.ts), then the addon - or, with a
// `comm`, the data-parallel loss (distributed.ts).
import { distributedLoss, distributedLossSync } from './distributed';
import { prepareLoss } from './loss-check';
import { native, type NativeInputs, type NativeOptions } from './native';
import type { LossResultOf, MbvrForwardResult, MbvrInputs, MbvrOptions, MbvrResult } from './types';

/** Errors raised on a worker thread get the caller's stack rather than none. */
export function withCallerStack<T>(promise: Promise<T>): Promise<T> {
  const caller = new Error();
  return promise.catch((error: unknown) => {
    if (error instanceof Error && caller.stack)
      error.stack = `${error.name}: ${error.message}\n${caller.stack.split('\n').slice(2).join('\n')}`;
    throw error;
  });
}

/** The MBVR loss and its gradients (`grads` unless the options say `grads: false`),
 * computed off the event loop. */
export function mbvrLoss<O extends MbvrOptions = MbvrOptions>(inputs: MbvrInputs, options?: O): Promise<LossResultOf<O>>;
export function mbvrLoss(inputs: MbvrInputs, options?: MbvrOptions): Promise<MbvrResult | MbvrForwardResult> {
  if (options !== null && typeof options === 'object' && (options as MbvrOptions).comm !== undefined)
    return withCallerStack(distributedLoss(inputs, options));
  let args: [NativeInputs, NativeOptions];
  try {
    args = prepareLoss(inputs, options);
  } catch (error) {
    return Promise.reject(error);
  }
  return withCallerStack(native().loss(...args) as Promise<MbvrResult | MbvrForwardResult>);
}

/** The MBVR loss and its gradients, on the calling thread. */
export function mbvrLossSync<O extends MbvrOptions = MbvrOptions>(inputs: MbvrInputs, options?: O): LossResultOf<O>;
export function mbvrLossSync(inputs: MbvrInputs, options?: MbvrOptions): MbvrResult | MbvrForwardResult {
  if (options !== null && typeof options === 'object' && (options as MbvrOptions).comm !== undefined)
    return distributedLossSync(inputs, options);
  return native().lossSync(...prepareLoss(inputs, options)) as MbvrResult | MbvrForwardResult;
}
