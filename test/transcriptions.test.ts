// The other transcriptions of the math held to the oracle (src/reference.ts, docs/math.md
// §7): the PyTorch formulation (scripts/mbvr_torch.py, float64 autograd) and the CUDA
// harness's float64 reference (cpp/cuda/dev/reference64.h, through a small driver built
// here with g++). Fresh random cases every run, written as case folders
// (cpp/cuda/dev/case_io.h); loss, terms, every gradient and dL/dtau must equal the
// oracle's to 1e-9 relative. Three independent float64 evaluations agreeing that closely
// leaves no room for a transcription error, while rounding (about 1e-14 here) stays far
// below the bound.
//
// Each check skips, saying why, when its tool is missing: /usr/bin/python3 without torch
// (CI installs python3-torch), or no g++.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { referenceLoss, type ReferenceResult } from '../src/reference';
import type { MbvrOptions } from '../src/types';
import { GRAD_KEYS, randInt, randomCase, randomOptions, relativeError, rng, suiteSeed, type Case, type Random } from './helpers';

// The repository root: the folder above that holds the sources this test runs (the GPU
// machine runs a compiled copy of the suite from .device/suite/test).
function findRoot(): string | undefined {
  for (let dir = path.join(__dirname, '..'); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts/mbvr_torch.py')) && fs.existsSync(path.join(dir, 'cpp/cuda/dev/reference64_main.cpp')))
      return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}
const ROOT = findRoot() ?? '';
const PYTHON = '/usr/bin/python3';
const BOUND = 1e-9;

interface TestCase extends Case {
  name: string;
  options: MbvrOptions & { temperature: number };
}

// ---- cases ---------------------------------------------------------------------------

function caseOf(random: Random, name: string, batch: number, dim: number, k: number, options: MbvrOptions): TestCase {
  return { ...randomCase(random, batch, dim, k), name, k, options: { temperature: 0.05, ...options } };
}

/** Video ids with duplicates: about two rows per id. */
function duplicateLabels(random: Random, batch: number): Int32Array {
  return Int32Array.from({ length: batch }, () => randInt(random, 0, Math.max(0, Math.floor(batch / 2) - 1)));
}

const logUniformTau = (random: Random) => Math.exp(Math.log(0.01) + random() * Math.log(100));

function makeCases(random: Random): TestCase[] {
  const cases: TestCase[] = [];
  const B = () => randInt(random, 4, 24);
  const D = () => randInt(random, 2, 16);
  // Each switch at least once, the rest of the values random.
  const c0 = caseOf(random, 'labels, per-row margin, K 1', B(), D(), 1, { temperature: logUniformTau(random) });
  c0.options.labels = duplicateLabels(random, c0.batch);
  c0.options.margin = Float32Array.from({ length: c0.batch }, () => random() * 0.5);
  cases.push(c0);
  cases.push(caseOf(random, 'scalar margin, K 2, normalize false', B(), D(), 2, { temperature: logUniformTau(random), margin: random() * 0.5, normalize: false }));
  cases.push(caseOf(random, 'K 3, alpha = beta = 0, tau 1', B(), D(), 3, { temperature: 1, alpha: 0, beta: 0, gamma: 0.5 + random() }));
  const c3 = caseOf(random, 'gamma = 0, tau 0.01, labels', B(), D(), 2, { temperature: 0.01, gamma: 0, alpha: random() * 2, beta: random() * 2 });
  c3.options.labels = duplicateLabels(random, c3.batch);
  cases.push(c3);
  cases.push(caseOf(random, 'B 1', 1, D(), randInt(random, 1, 3), { temperature: logUniformTau(random), margin: 0.3 }));
  cases.push(confidentCase(random));
  cases.push(tinyRowsCase(random));
  for (let n = 0; n < 6; n++) {
    const batch = randInt(random, 1, 20);
    cases.push(caseOf(random, `random ${n}`, batch, randInt(random, 1, 12), randInt(random, 1, 3), randomOptions(random, batch)));
  }
  return cases;
}

/** tau = 0.01 and every positive a near-duplicate of its query (rows 0 and 1 also of
 * each other, with one video id): every soft-max is confident, its loss ~e^-40 or less,
 * where logsumexp - z_pos would be rounding noise. */
function confidentCase(random: Random): TestCase {
  const batch = 12;
  const dim = 32;
  const c = caseOf(random, 'confident: tau 0.01, near-duplicate rows', batch, dim, 2, { temperature: 0.01, margin: 0.02 });
  const noise = () => (random() - 0.5) * 2e-3;
  for (let d = 0; d < dim; d++) c.query[dim + d] = c.query[d] + noise();
  for (const x of [c.fused, c.visual, c.text]) for (let e = 0; e < batch * dim; e++) x[e] = c.query[e] + noise();
  c.options.labels = Int32Array.from({ length: batch }, (_, i) => (i === 0 ? 1 : i));
  return c;
}

/** A zero row and rows below the clamp (norm < 1e-12): the clamped normalisation (§3.6). */
function tinyRowsCase(random: Random): TestCase {
  const c = caseOf(random, 'zero and tiny rows', randInt(random, 3, 10), randInt(random, 2, 8), 2, { temperature: logUniformTau(random) });
  const D = c.dim;
  c.query.fill(0, 0, D);
  for (let d = 0; d < D; d++) c.fused[D + d] *= 1e-14;
  for (let d = 0; d < D; d++) c.shuffled[d] *= 1e-13;
  c.visual.fill(0, 2 * D, 3 * D);
  return c;
}

// ---- case folders (cpp/cuda/dev/case_io.h) --------------------------------------------

function bytes(x: Float32Array | Int32Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

function writeCase(dir: string, c: TestCase): void {
  fs.mkdirSync(dir, { recursive: true });
  const o = c.options;
  const margin = o.margin ?? 0;
  const meta: [string, number | string][] = [
    ['B', c.batch], ['D', c.dim], ['K', c.k], ['tau', o.temperature],
    ['alpha', o.alpha ?? 1], ['beta', o.beta ?? 1], ['gamma', o.gamma ?? 1],
    ['normalize', o.normalize === false ? 0 : 1], ['labels', o.labels ? 1 : 0],
    ['margin_mode', margin instanceof Float32Array ? 2 : margin !== 0 ? 1 : 0],
    ['margin', margin instanceof Float32Array ? 0 : margin],
  ];
  // String(number) is the shortest text that reads back as the same double.
  fs.writeFileSync(path.join(dir, 'meta.txt'), meta.map(([k, v]) => `${k} ${String(v)}\n`).join(''));
  for (const key of ['query', 'fused', 'visual', 'text', 'shuffled'] as const) fs.writeFileSync(path.join(dir, `${key}.f32`), bytes(c[key]));
  if (o.labels) fs.writeFileSync(path.join(dir, 'labels.i32'), bytes(o.labels));
  if (margin instanceof Float32Array) fs.writeFileSync(path.join(dir, 'margin.f32'), bytes(margin));
}

interface Evaluation {
  scalars: Record<string, number>;
  grads: Record<string, Float64Array>;
}

function readEvaluation(dir: string, prefix: string): Evaluation {
  const scalars: Record<string, number> = {};
  for (const line of fs.readFileSync(path.join(dir, `${prefix}_scalars.txt`), 'utf8').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k) scalars[k] = Number(v);
  }
  const grads: Record<string, Float64Array> = {};
  for (const key of GRAD_KEYS) {
    const file = path.join(dir, `${prefix}_d_${key}.f64`);
    if (!fs.existsSync(file)) continue;
    const b = fs.readFileSync(file);
    grads[key] = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  }
  return { scalars, grads };
}

// ---- comparison ----------------------------------------------------------------------

function oracle(c: TestCase): ReferenceResult {
  return referenceLoss(c, c.options);
}

function compare(label: string, out: Evaluation, ref: ReferenceResult): void {
  const scalar = (name: string, o: number | undefined, r: number) => {
    assert.ok(o !== undefined && Math.abs(o - r) <= BOUND * Math.abs(r), `${label}: ${name} ${o} vs oracle ${r}`);
  };
  scalar('loss', out.scalars.loss, ref.loss);
  for (const term of ['qm', 'mq', 'v', 't', 'ms'] as const) scalar(`terms.${term}`, out.scalars[term], ref.terms[term]);
  scalar('dL/dtau', out.scalars.dtau, ref.grads.temperature);
  for (const key of GRAD_KEYS) {
    const r = ref.grads[key];
    const o = out.grads[key];
    assert.ok(r && o, `${label}: grads.${key} missing`);
    const err = relativeError(o, r);
    assert.ok(err <= BOUND, `${label}: grads.${key} relative error ${err.toExponential(2)}`);
  }
}

// ---- the tools -----------------------------------------------------------------------

function torchMissing(): string | false {
  if (!ROOT) return 'scripts/mbvr_torch.py not found above this test: PyTorch check skipped';
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not found: PyTorch check skipped`;
  return r.status === 0 ? false : `${PYTHON} cannot import torch (apt-get install python3-torch): PyTorch check skipped`;
}

function gppMissing(): string | false {
  if (!ROOT) return 'cpp/cuda/dev/reference64_main.cpp not found above this test: the harness reference check skipped';
  const r = spawnSync('g++', ['--version'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? 'g++ not found: the harness reference check skipped' : false;
}

function run(command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 16 << 20 });
  assert.ok(!r.error && r.status === 0, `${command} ${args.slice(0, 3).join(' ')} ... failed: ${r.error ?? ''}${r.stderr}`);
}

// ---- the checks ----------------------------------------------------------------------

const cases = makeCases(rng(suiteSeed + 700));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mbvr-transcriptions-'));
const dirs = cases.map((c, n) => {
  const dir = path.join(work, `case${n}`);
  writeCase(dir, c);
  return dir;
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe('transcriptions of the math agree with the oracle (src/reference.ts) to 1e-9', () => {
  const noTorch = torchMissing();
  const noGpp = gppMissing();

  it('cases exercise what they claim: the confident case is confident', () => {
    // Terms below 1e-8: logsumexp - z_pos, off by ~1e-14 (1e-16 |z|), would miss them by 1e-6.
    const c = cases.find((x) => x.name.startsWith('confident'))!;
    const ref = oracle(c);
    for (const term of ['qm', 'mq', 'v', 't', 'ms'] as const)
      assert.ok(ref.terms[term] > 0 && ref.terms[term] < 1e-8, `terms.${term} = ${ref.terms[term]}`);
  });

  it('the PyTorch formulation (scripts/mbvr_torch.py, positives apart, float64 autograd)', { skip: noTorch }, () => {
    run(PYTHON, [path.join(ROOT, 'scripts/mbvr_torch.py'), '--prefix', 'torch', ...dirs]);
    cases.forEach((c, n) => compare(`${c.name} (seed ${suiteSeed})`, readEvaluation(dirs[n], 'torch'), oracle(c)));
  });

  it('the plain PyTorch form the benchmarks time, wherever no term is confident (>= 1e-3)', { skip: noTorch }, () => {
    // logsumexp - z_pos loses about 1e-16 |z| absolutely: exact enough once every term the
    // oracle computes is >= 1e-3 (the confident case is the positives-apart form's job).
    const ordinary = cases
      .map((c, n) => ({ c, dir: dirs[n], ref: oracle(c) }))
      .filter(({ ref }) => Object.values(ref.terms).every((v) => v === 0 || v >= 1e-3));
    assert.ok(ordinary.length >= cases.length / 2, `only ${ordinary.length} ordinary cases`);
    run(PYTHON, [path.join(ROOT, 'scripts/mbvr_torch.py'), '--plain', '--prefix', 'plain', ...ordinary.map((x) => x.dir)]);
    for (const { c, dir, ref } of ordinary) compare(`${c.name} (plain, seed ${suiteSeed})`, readEvaluation(dir, 'plain'), ref);
  });

  it("the CUDA harness's float64 reference (cpp/cuda/dev/reference64.h, built with g++)", { skip: noGpp }, () => {
    const exe = path.join(work, 'reference64_main');
    run('g++', ['-O2', '-std=c++17', '-I', path.join(ROOT, 'cpp'), path.join(ROOT, 'cpp/cuda/dev/reference64_main.cpp'), '-o', exe]);
    run(exe, dirs);
    cases.forEach((c, n) => compare(`${c.name} (seed ${suiteSeed})`, readEvaluation(dirs[n], 'ref64'), oracle(c)));
  });
});
