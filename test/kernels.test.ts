// Every fp32 matrix kernel this CPU can run (AVX-512 12x32, AVX2 6x16, portable 4x16;
// MBVR_GEMM_KERNEL picks a lesser one) gives the loss within the 1e-5 of docs/math.md §5 of the float64
// reference, on shapes with edge tiles in every direction. The kernel is chosen once per
// process, so each runs in a child.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { backends } from '../src/index';
import type { MbvrResult } from '../src/types';
import { compareToReference, randomCase, rng, suiteSeed } from './helpers';

const SHAPES: [number, number][] = [
  [37, 13],
  [301, 67],
  [290, 129],
  [5, 1],
];
const OPTIONS = { backend: 'cpu', temperature: 0.07, margin: 0.1 } as const;

function caseOf(n: number) {
  const [batch, dim] = SHAPES[n];
  return randomCase(rng(suiteSeed + 700 + n), batch, dim, 2);
}

function runWithKernel(kernel: string): { gemm: string; results: MbvrResult[] } {
  const root = path.join(__dirname, '..');
  const script = `
    const { mbvrLossSync, backends } = require(${JSON.stringify(root)});
    const { randomCase, rng } = require(${JSON.stringify(path.join(__dirname, 'helpers'))});
    const results = [];
    for (let n = 0; n < ${SHAPES.length}; n++) {
      const [b, d] = ${JSON.stringify(SHAPES)}[n];
      const r = mbvrLossSync(randomCase(rng(${suiteSeed} + 700 + n), b, d, 2), ${JSON.stringify(OPTIONS)});
      for (const k of Object.keys(r.grads)) if (typeof r.grads[k] !== 'number') r.grads[k] = Array.from(r.grads[k]);
      results.push(r);
    }
    process.stdout.write('\\n' + JSON.stringify({ gemm: backends().cpu.gemm, results }));`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { ...process.env, MBVR_GEMM_KERNEL: kernel },
    encoding: 'utf8',
    maxBuffer: 256 << 20, // every gradient, as JSON
  });
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout.trim().split('\n').pop()!) as { gemm: string; results: MbvrResult[] };
  for (const r of out.results) {
    const grads = r.grads as unknown as Record<string, unknown>;
    for (const k of Object.keys(grads)) if (Array.isArray(grads[k])) grads[k] = Float32Array.from(grads[k] as number[]);
  }
  return out;
}

describe('fp32 matrix kernels', () => {
  const simd = backends().cpu.simd;
  const kernels = [
    { name: 'avx512', runs: simd === 'avx512' },
    { name: 'avx2', runs: simd === 'avx512' || simd === 'avx2' },
    { name: 'portable', runs: true },
  ];
  for (const kernel of kernels) {
    it(`${kernel.name} agrees with the float64 reference within 1e-5`, { skip: !kernel.runs }, () => {
      const { gemm, results } = runWithKernel(kernel.name);
      assert.ok(gemm.startsWith(kernel.name), `ran ${gemm}`);
      results.forEach((out, n) => {
        const c = caseOf(n);
        compareToReference(out, c, OPTIONS, `${gemm}, B=${c.batch} D=${c.dim}, seed ${suiteSeed}`);
      });
    });
  }
});
