// similarity, shuffledLogits, modalityShuffle, backends, and loading the package
// both as CommonJS and as an ES module.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { backends, modalityShuffle, shuffledLogits, similarity } from '../src/index';
import { cosineRef, randInt, randomRows, relativeError, rng, suiteSeed } from './helpers';

const root = path.join(__dirname, '..');

describe('similarity', () => {
  it('equals c(a_i, b_j) / tau for random shapes, normalized or not', () => {
    const random = rng(suiteSeed + 200);
    for (let n = 0; n < 12; n++) {
      const rows = randInt(random, 1, 200);
      const cols = randInt(random, 1, 200);
      const dim = randInt(random, 1, 150);
      const temperature = 0.01 + random();
      const normalize = random() < 0.7;
      const a = randomRows(random, rows, dim);
      const b = randomRows(random, cols, dim);
      const out = similarity(a, b, { rows, cols, dim, temperature, normalize });
      assert.equal(out.length, rows * cols);
      const ref = new Float64Array(rows * cols);
      for (let i = 0; i < rows; i++)
        for (let j = 0; j < cols; j++) ref[i * cols + j] = cosineRef(a, i, b, j, dim, normalize) / temperature;
      assert.ok(relativeError(out, ref) < 1e-5, `case ${n} rows=${rows} cols=${cols} dim=${dim}`);
    }
  });

  it('reads sizes from tensor-likes', () => {
    const random = rng(suiteSeed + 201);
    const a = randomRows(random, 5, 3);
    const b = randomRows(random, 7, 3);
    const plain = similarity(a, b, { rows: 5, cols: 7, dim: 3 });
    const tensors = similarity({ data: a, shape: [5, 3] }, { data: b, dims: [7, 3] });
    assert.deepEqual(tensors, plain);
  });
});

describe('shuffledLogits', () => {
  it('equals c(q_i, s_ik) / tau', () => {
    const random = rng(suiteSeed + 202);
    const [batch, dim, k] = [37, 19, 3];
    const q = randomRows(random, batch, dim);
    const s = randomRows(random, batch * k, dim);
    const out = shuffledLogits(q, s, { batch, dim, temperature: 0.07 });
    const ref = new Float64Array(batch * k);
    for (let i = 0; i < batch; i++)
      for (let j = 0; j < k; j++) ref[i * k + j] = cosineRef(q, i, s, i * k + j, dim, true) / 0.07;
    assert.ok(relativeError(out, ref) < 1e-6);
  });
});

describe('modalityShuffle', () => {
  it('returns K derangements, distinct per row, label-avoiding, reproducible from the seed', () => {
    const random = rng(suiteSeed + 203);
    for (let n = 0; n < 30; n++) {
      const batch = randInt(random, 2, 300);
      const k = randInt(random, 1, Math.min(5, batch - 1));
      const useLabels = random() < 0.6;
      const labels = useLabels
        ? Int32Array.from({ length: batch }, () => randInt(random, 0, Math.max(2, Math.floor(batch / 2))))
        : undefined;
      const seed = randInt(random, 0, 1e9);
      const pi = modalityShuffle(batch, { k, seed, labels });
      assert.equal(pi.length, batch * k);
      assert.deepEqual(modalityShuffle(batch, { k, seed, labels }), pi, 'same seed, same result');
      let largest = 1;
      if (labels) {
        const counts = new Map<number, number>();
        for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
        largest = Math.max(...counts.values());
      }
      const labelsAvoidable = k <= batch - 2 * largest + 1; // guaranteed then (test/shuffle.test.ts checks the optimum everywhere)
      for (let j = 0; j < k; j++) {
        const image = new Set<number>();
        for (let i = 0; i < batch; i++) {
          const t = pi[i * k + j];
          assert.ok(t >= 0 && t < batch && t !== i, `pi_${j}(${i}) = ${t}`);
          if (labels && labelsAvoidable) assert.notEqual(labels[t], labels[i], `label clash at row ${i}`);
          image.add(t);
        }
        assert.equal(image.size, batch, `pi_${j} is a permutation`);
      }
      for (let i = 0; i < batch; i++) assert.equal(new Set(pi.subarray(i * k, i * k + k)).size, k, `row ${i} negatives distinct`);
    }
    assert.notDeepEqual(modalityShuffle(50, { seed: 1 }), modalityShuffle(50, { seed: 2 }));
  });
});

describe('backends', () => {
  it('reports the cpu, and cuda as facts with a reason when unavailable', () => {
    const info = backends();
    assert.equal(info.cpu.available, true);
    assert.ok(info.cpu.threads >= 1);
    assert.equal(typeof info.cuda.compiled, 'boolean');
    assert.equal(typeof info.cuda.available, 'boolean');
    assert.ok(Array.isArray(info.cuda.devices));
    if (!info.cuda.available) assert.ok(typeof info.cuda.reason === 'string' && info.cuda.reason.length > 0);
  });
});

describe('loading the package', () => {
  const script = (code: string, type: 'commonjs' | 'module') =>
    execFileSync(process.execPath, ['--input-type=' + type, '-e', code], { cwd: root, encoding: 'utf8' }).trim();
  // similarity's default temperature is the loss's (DEFAULT_TEMPERATURE = 0.05): cosines 0 and 1 -> 0, 20.
  const exercise = `const r = mbvr.similarity(new Float32Array([1,0]), new Float32Array([0,1,1,0]), { rows: 1, cols: 2, dim: 2 });
    console.log(typeof mbvr.mbvrLoss, typeof mbvr.mbvrLossSync, Array.from(r).join(','));`;
  it("works with require('mbvr')", () => {
    assert.equal(script(`const mbvr = require('mbvr'); ${exercise}`, 'commonjs'), 'function function 0,20');
  });
  it("works with import ... from 'mbvr'", () => {
    assert.equal(script(`import * as mbvr from 'mbvr'; ${exercise}`, 'module'), 'function function 0,20');
    assert.equal(script(`import { mbvrLossSync } from 'mbvr'; console.log(typeof mbvrLossSync)`, 'module'), 'function');
  });
});
