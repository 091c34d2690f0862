// The one place mbvr/tfjs loads TensorFlow.js. @tensorflow/tfjs-core (>= 4) is an optional
// peer dependency: without it, loading mbvr/tfjs throws an Error that says what to
// install (and `import 'mbvr'` never gets here).
// tfjs-core's own typings name DOM and `long` types; these references let this file
// compile under our Node-only tsconfig.
/// <reference lib="dom" />
/// <reference types="long" />
import type * as TF from '@tensorflow/tfjs-core';

/** What to install, for the load error and for the missing-gradients warning. */
export const SETUP_HINT =
  'npm install @tensorflow/tfjs (or, lighter: @tensorflow/tfjs-core @tensorflow/tfjs-backend-cpu @tensorflow/tfjs-layers, ' +
  "and import '@tensorflow/tfjs-layers' once: in Node it is what registers tfjs's gradients)";

function loadTfjs(): typeof TF {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@tensorflow/tfjs-core') as typeof TF;
  } catch (cause) {
    throw new Error(
      [
        'mbvr/tfjs: could not load @tensorflow/tfjs-core (TensorFlow.js), an optional peer dependency of mbvr.',
        `Reason: ${(cause as Error).message.split('\n')[0]}`,
        'Possible solutions:',
        `- install TensorFlow.js next to mbvr: ${SETUP_HINT}`,
        "- or use the core API without tfjs: import { mbvrLossSync } from 'mbvr'",
      ].join('\n'),
      { cause },
    );
  }
}

export const tf: typeof TF = loadTfjs();

let warned = false;

/**
 * Warns once (a Node process warning) when tfjs has no gradients registered: in Node,
 * `@tensorflow/tfjs-core` alone registers none (its `dist/register_all_gradients` is an
 * ES module Node cannot load), so the model's own ops would fail the backward pass with
 * "gradient function not found for ...". Called from our ops' backward passes, i.e. only
 * when the user differentiates.
 */
export function warnIfNoGradients(): void {
  if (warned || tf.getGradient('Sum') !== undefined) return;
  warned = true;
  const message = `TensorFlow.js has no gradients registered, so the model's own ops cannot be differentiated. Fix: ${SETUP_HINT}.`;
  if (typeof process !== 'undefined' && typeof process.emitWarning === 'function') process.emitWarning(message, 'MbvrWarning');
  else console.warn(`mbvr/tfjs: ${message}`);
}
