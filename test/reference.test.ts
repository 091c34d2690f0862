// The oracle checked on its own: its analytic gradients against central finite
// differences of its own loss, in float64, over random configurations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { referenceLoss, type ReferenceInputs } from '../src/reference';
import type { MbvrOptions } from '../src/types';
import { randInt, randomOptions, rng, suiteSeed } from './helpers';

function randomRows64(random: () => number, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => (random() - 0.5) * 2);
}

/** Central difference of the loss along one coordinate of one input. */
function numericGradient(inputs: ReferenceInputs, options: MbvrOptions, key: keyof ReferenceInputs, index: number, h: number): number {
  const x = inputs[key] as Float64Array;
  const saved = x[index];
  x[index] = saved + h;
  const up = referenceLoss(inputs, options).loss;
  x[index] = saved - h;
  const down = referenceLoss(inputs, options).loss;
  x[index] = saved;
  return (up - down) / (2 * h);
}

describe('the float64 reference', () => {
  it('has gradients that match central finite differences (every input and tau)', () => {
    const random = rng(suiteSeed + 100);
    for (let n = 0; n < 12; n++) {
      const batch = randInt(random, 2, 7);
      const dim = randInt(random, 1, 5);
      const k = randInt(random, 1, 3);
      const inputs: ReferenceInputs = {
        batch,
        dim,
        query: randomRows64(random, batch * dim),
        fused: randomRows64(random, batch * dim),
        visual: randomRows64(random, batch * dim),
        text: randomRows64(random, batch * dim),
        shuffled: randomRows64(random, batch * k * dim),
      };
      const options = randomOptions(random, batch);
      options.temperature = 0.1 + random(); // keep the loss smooth enough for differences
      const label = `case ${n} B=${batch} D=${dim} K=${k} seed ${suiteSeed}`;
      const ref = referenceLoss(inputs, options);
      // Rounding in the difference quotient: about 1e-16 * |L| / h, with h = 1e-6.
      const noise = 1e-8 * Math.max(1, Math.abs(ref.loss));
      for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) {
        const analytic = ref.grads[key]!;
        for (let probe = 0; probe < 4; probe++) {
          const index = randInt(random, 0, analytic.length - 1);
          const numeric = numericGradient(inputs, options, key, index, 1e-6);
          assert.ok(
            Math.abs(numeric - analytic[index]) <= 1e-5 * Math.max(Math.abs(numeric), Math.abs(analytic[index])) + noise,
            `${label}: d/d${key}[${index}] analytic ${analytic[index]} vs numeric ${numeric}`,
          );
        }
      }
      const tau = options.temperature;
      const h = 1e-6 * tau;
      const up = referenceLoss(inputs, { ...options, temperature: tau + h }).loss;
      const down = referenceLoss(inputs, { ...options, temperature: tau - h }).loss;
      const numeric = (up - down) / (2 * h);
      assert.ok(Math.abs(numeric - ref.grads.temperature) <= 1e-5 * Math.abs(numeric) + noise / tau, `${label}: dtau ${ref.grads.temperature} vs ${numeric}`);
    }
  });

  it('computes each term as docs/math.md §2 writes it (a hand-checked 2 x 1 case)', () => {
    // B = 2, D = 1, normalize off: c(q_i, m_j) = q_i * m_j. Closed forms below.
    const q = [0.5, -0.25];
    const m = [0.8, 0.4];
    const tau = 0.5;
    const z = (i: number, j: number) => (q[i] * m[j]) / tau;
    const lse = (a: number, b: number) => Math.log(Math.exp(a) + Math.exp(b));
    const qm = (lse(z(0, 0), z(0, 1)) - z(0, 0) + lse(z(1, 0), z(1, 1)) - z(1, 1)) / 2;
    const mq = (lse(z(0, 0), z(1, 0)) - z(0, 0) + lse(z(0, 1), z(1, 1)) - z(1, 1)) / 2;
    const out = referenceLoss(
      { batch: 2, dim: 1, query: Float64Array.from(q), fused: Float64Array.from(m) },
      { temperature: tau, normalize: false, alpha: 0, beta: 0, gamma: 0 },
    );
    assert.ok(Math.abs(out.terms.qm - qm) < 1e-14);
    assert.ok(Math.abs(out.terms.mq - mq) < 1e-14);
    assert.ok(Math.abs(out.loss - (qm + mq)) < 1e-14);
  });
});
