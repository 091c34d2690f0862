// Memory is O(B * D): at B = 16384, D = 64 a single B x B float matrix is 1 GiB; the
// loss must grow the process by far less. Measured in a fresh child process.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { backend } from './helpers';

const child = `
const { mbvrLossSync, backends } = require('mbvr');
const B = 16384, D = 64;
const rows = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) ; return a; };
const inputs = { batch: B, dim: D, query: rows(B * D), fused: rows(B * D).reverse(), visual: rows(B * D).map((x) => -x),
                 text: rows(B * D).map((x) => x * 0.5 + 0.1), shuffled: rows(B * D).map((x) => 1 - x) };
const before = process.resourceUsage().maxRSS * 1024;  // peak so far, inputs allocated
const out = mbvrLossSync(inputs, { backend: process.argv[1], precision: process.argv[2] });
// bf16 runs where the CPU has AVX512-BF16; elsewhere the CPU backend computes it in fp32.
const expected = process.argv[2] === 'bf16' && process.argv[1] === 'cpu' && !backends().cpu.bf16.native ? 'fp32' : process.argv[2];
if (out.precision !== expected) throw new Error('ran ' + out.precision);
const after = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ growth: after - before, loss: out.loss }));
`;

const repeated = `
const { mbvrLossSync, mbvrLoss } = require('mbvr');
const B = 64, D = 32;
const a = Float32Array.from({ length: B * D }, (_, i) => Math.sin(i));
const call = () => mbvrLossSync({ batch: B, dim: D, query: a, fused: a, visual: a, text: a, shuffled: a }, { backend: process.argv[1] });
const rss = () => { global.gc(); return process.memoryUsage().rss; };
(async () => {
  for (let i = 0; i < 300; i++) call();
  const before = rss();
  for (let i = 0; i < 3000; i++) call();
  for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 10 }, () => mbvrLoss({ batch: B, dim: D, query: a, fused: a, visual: a, text: a, shuffled: a }, { backend: process.argv[1] })));
  for (let i = 0; i < 300; i++) { try { mbvrLossSync({ batch: B, dim: D, query: a, fused: a.subarray(1) }); } catch {} }
  console.log(JSON.stringify({ growth: rss() - before }));
})();
`;

describe('memory', () => {
  it('3,600 calls (sync, async, failing) do not leak', () => {
    const output = execFileSync(process.execPath, ['--expose-gc', '-e', repeated, backend], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
    const { growth } = JSON.parse(output) as { growth: number };
    console.log(`# RSS growth over 3,600 calls: ${(growth / 2 ** 20).toFixed(1)} MiB`);
    // Each call allocates about 50 KiB of outputs and scratch: a leak would show ~180 MiB.
    assert.ok(growth < 24 * 2 ** 20, `grew ${growth} bytes`);
  });

  const precisions = backend === 'cpu' ? ['fp32', 'bf16'] : [process.env.MBVR_TEST_PRECISION ?? 'fp32'];
  for (const precision of precisions) {
    it(`B = 16384, D = 64 (${precision}): peak RSS grows by far less than one B x B matrix (1 GiB)`, () => {
      const output = execFileSync(process.execPath, ['-e', child, backend, precision], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
      const { growth, loss } = JSON.parse(output) as { growth: number; loss: number };
      const bxb = 16384 * 16384 * 4;
      console.log(`# peak RSS growth ${(growth / 2 ** 20).toFixed(1)} MiB (B x B matrix: ${bxb / 2 ** 20} MiB)`);
      assert.ok(Number.isFinite(loss));
      // Gradients (5 x 4 MiB), strip tiles and, for bf16, bf16 copies are expected; 1/8 of B x B is not.
      assert.ok(growth < bxb / 8, `grew ${growth} bytes`);
    });
  }
});
