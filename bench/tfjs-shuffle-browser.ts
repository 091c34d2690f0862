// The browser half of bench/tfjs-shuffle.ts: bundled with esbuild and run in headless
// Chromium on tfjs's webgl backend. The native addon cannot run here, so the training
// step's loss is a tfjs stand-in over the same inputs: InfoNCE over query x fused, plus
// the MS term log(e^z_ii + sum_k e^zs_ik) - z_ii.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients'; // fine in a bundle (not in Node)
import '@tensorflow/tfjs-backend-webgl';
import { shuffledPairs } from '../src/tfjs-pairs';
import { modalityShuffle } from '../src/shuffle';
import { type LossFn, measure, type Version, versions } from './tfjs-shuffle-step';

const tau = 0.05;

const standIn: LossFn = (q, m, _v, _t, s) =>
  tf.tidy(() => {
    const [batch, dim] = q.shape;
    const k = s.shape[0] / batch;
    const unit = (x: tf.Tensor2D) => tf.div(x, tf.norm(x, 'euclidean', 1, true)) as tf.Tensor2D;
    const [nq, nm, ns] = [unit(q), unit(m), unit(s)];
    const z = tf.div(tf.matMul(nq, nm, false, true), tau) as tf.Tensor2D;
    const positive = tf.div(tf.sum(tf.mul(nq, nm), 1, true), tau) as tf.Tensor2D; // B x 1
    const zs = tf.div(tf.sum(tf.mul(tf.reshape(nq, [batch, 1, dim]), tf.reshape(ns, [batch, k, dim])), 2), tau) as tf.Tensor2D;
    const qm = tf.mean(tf.sub(tf.logSumExp(z, 1, true), positive));
    const ms = tf.mean(tf.sub(tf.logSumExp(tf.concat([positive, zs], 1), 1, true), positive));
    return tf.add(qm, ms) as tf.Scalar;
  });

function renderer(): string {
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return 'no WebGL2 context';
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  return String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
}

interface Settings {
  runs: number;
  sizes: [number, number][];
  dim: number;
  features: number;
  hidden: number;
}

(globalThis as unknown as { runBench: (s: Settings) => Promise<unknown> }).runBench = async (s: Settings) => {
  if (!(await tf.setBackend('webgl'))) throw new Error(`tfjs could not start its webgl backend (${renderer()})`);
  await tf.ready();
  const all = versions(tf, shuffledPairs as Version);
  const out = measure(tf, all, { ...s, backend: 'webgl', loss: standIn, shuffle: (batch, k, seed) => modalityShuffle(batch, { k, seed }) });
  return { ...out, device: `WebGL ${tf.env().getNumber('WEBGL_VERSION')} on ${renderer()}` };
};
