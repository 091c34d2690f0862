// Run under mpirun by test/mpi-demo.test.ts: mbvr/tfjs with a comm and a learned logit
// scale. Each rank passes its rows of one global batch (uneven: rank r holds 3 + r rows)
// and differentiates the loss in every input and in s; summed over the ranks, as a
// trainer's allReduce sums them, dL/ds must be the single-process dL/ds of the whole
// batch (each rank returns its share), and each rank's input gradients its rows of it.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { init } from '../../src/mpi';
import { mbvrLoss } from '../../src/tfjs';
import { randomRows, relativeError, rng, suiteSeed } from '../helpers';

const NAMES = ['query', 'fused', 'visual', 'text', 'shuffled'] as const;

void (async () => {
  await tf.setBackend('cpu');
  const comm = await init();
  const { rank, size } = comm;
  const failures: string[] = [];
  const seed = Number(process.argv[2] ?? suiteSeed);
  const rows = Array.from({ length: size }, (_, r) => 3 + r);
  const batch = rows.reduce((a, b) => a + b, 0);
  const row0 = rows.slice(0, rank).reduce((a, b) => a + b, 0);
  const dim = 6, k = 2;
  const random = rng(seed); // the same global batch on every rank
  const whole = {
    query: randomRows(random, batch, dim), fused: randomRows(random, batch, dim), visual: randomRows(random, batch, dim),
    text: randomRows(random, batch, dim), shuffled: randomRows(random, batch * k, dim),
  };
  const labels = Int32Array.from({ length: batch }, (_, i) => i % Math.max(2, batch - 2)); // duplicates across ranks
  const s = tf.scalar(Math.log(1 / 0.07));

  // dL/d(every input) and dL/ds; `comm` or not, on `n` rows from `first`.
  const gradients = (first: number, n: number, withComm: boolean) => {
    const part = (name: (typeof NAMES)[number]) => {
      const width = name === 'shuffled' ? k * dim : dim;
      return tf.tensor2d(whole[name].subarray(first * width, (first + n) * width), [n * (name === 'shuffled' ? k : 1), dim]);
    };
    const inputs = NAMES.map(part);
    const f = (...xs: tf.Tensor[]) => {
      const [query, fused, visual, text, shuffled, scale] = xs;
      return mbvrLoss({ query, fused, visual, text, shuffled }, { logitScale: scale, margin: 0.1, labels: labels.subarray(first, first + n), ...(withComm ? { comm } : {}) });
    };
    const grads = tf.grads(f)([...inputs, s]);
    return grads.map((g) => g.dataSync() as Float32Array);
  };

  const mine = gradients(row0, rows[rank], true);
  const single = gradients(0, batch, false);
  const dsSum = comm.sync.allReduce(Float64Array.of(mine[5][0]), 'sum')[0];
  const err = Math.abs(dsSum - single[5][0]) / Math.abs(single[5][0]);
  if (!(err <= 1e-5)) failures.push(`dL/ds summed over the ranks ${dsSum} vs one process ${single[5][0]} (error ${err})`);
  NAMES.forEach((name, i) => {
    const width = name === 'shuffled' ? k * dim : dim;
    const e = relativeError(mine[i], single[i].subarray(row0 * width, (row0 + rows[rank]) * width));
    if (!(e <= 1e-5)) failures.push(`dL/d${name}: this rank's rows off by ${e}`);
  });
  console.log(`MPI-RESULT ${JSON.stringify({ rank, size, checks: 6, failures })}`);
})();
