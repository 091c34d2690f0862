// The oracle: docs/math.md §2 (the loss) and §3 (its gradients) evaluated in float64 with
// plain loops over full B x B matrices, with no attempt at speed; every line follows the
// definitions. Every other implementation is tested against it (docs/math.md §7): the CPU
// and CUDA backends by test/loss.test.ts and the rest of the suite, the PyTorch
// formulation (scripts/mbvr_torch.py) and the CUDA harness's float64 reference
// (cpp/cuda/dev/reference64.h) by test/transcriptions.test.ts; test/reference.test.ts
// checks its gradients against finite differences of its own loss.
import type { MbvrOptions } from './types';

type Vec = Float32Array | Float64Array;

export interface ReferenceInputs {
  batch: number;
  dim: number;
  query: Vec;
  fused: Vec;
  visual?: Vec;
  text?: Vec;
  shuffled?: Vec;
}

export interface ReferenceResult {
  loss: number;
  terms: { qm: number; mq: number; v: number; t: number; ms: number };
  grads: {
    query: Float64Array;
    fused: Float64Array;
    visual?: Float64Array;
    text?: Float64Array;
    shuffled?: Float64Array;
    temperature: number;
  };
}

const EPS = 1e-12;

/** Rows x^ = x / max(||x||, eps) (or x itself), and the divisor used per row (docs/math.md §1). */
function normalizeRows(x: Vec, rows: number, dim: number, normalize: boolean): { hat: Float64Array; div: Float64Array } {
  const hat = new Float64Array(rows * dim);
  const div = new Float64Array(rows).fill(1);
  for (let i = 0; i < rows; i++) {
    let ss = 0;
    for (let d = 0; d < dim; d++) ss += x[i * dim + d] * x[i * dim + d];
    if (normalize) div[i] = Math.max(Math.sqrt(ss), EPS);
    for (let d = 0; d < dim; d++) hat[i * dim + d] = x[i * dim + d] / div[i];
  }
  return { hat, div };
}

/**
 * dL/dx from dL/dx^ through x^ = x / max(||x||, eps) (docs/math.md §3.6): the radial
 * component removed, over ||x||; a clamped row (the divisor the constant eps) only scaled.
 */
function normalizeBackward(dhat: Float64Array, hat: Float64Array, div: Float64Array, rows: number, dim: number, normalize: boolean): Float64Array {
  if (!normalize) return dhat;
  const dx = new Float64Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    const clamped = div[i] === EPS; // ||x|| < eps: the divisor is a constant
    let proj = 0;
    if (!clamped) for (let d = 0; d < dim; d++) proj += hat[i * dim + d] * dhat[i * dim + d];
    for (let d = 0; d < dim; d++) dx[i * dim + d] = (dhat[i * dim + d] - hat[i * dim + d] * proj) / div[i];
  }
  return dx;
}

function dot(a: Float64Array, ai: number, b: Float64Array, bi: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += a[ai * dim + d] * b[bi * dim + d];
  return s;
}

/**
 * One softmax term with its positive at index p (docs/math.md §3.1): loss =
 * logsumexp(z) - z_p and grad_j = softmax(z)_j - [j == p], in forms that do not cancel
 * when the positive dominates (loss = log1p(others), grad_p = -others / total), with the
 * running max m taken over all entries.
 */
function positiveSoftmax(z: number[], p: number): { loss: number; grad: number[] } {
  const m = Math.max(...z);
  let others = 0;
  z.forEach((v, j) => {
    if (j !== p) others += Math.exp(v - m);
  });
  const own = Math.exp(z[p] - m);
  const total = own + others;
  const loss = z[p] === m ? Math.log1p(others) : Math.log(total) + (m - z[p]);
  return { loss, grad: z.map((v, j) => (j === p ? -others / total : Math.exp(v - m) / total)) };
}

/** The MBVR loss (docs/math.md §2), its terms and every gradient (§3), in float64. */
export function referenceLoss(inputs: ReferenceInputs, options: MbvrOptions = {}): ReferenceResult {
  const B = inputs.batch;
  const D = inputs.dim;
  const tau = options.temperature ?? 0.05;
  const alpha = options.alpha ?? 1;
  const beta = options.beta ?? 1;
  const gamma = options.gamma ?? 1;
  const normalize = options.normalize ?? true;
  const labels = options.labels;
  const margin = (i: number) =>
    options.margin instanceof Float32Array ? options.margin[i] : ((options.margin as number | undefined) ?? 0);
  const allowed = (i: number, j: number) => i === j || !labels || labels[i] !== labels[j];
  const K = inputs.shuffled ? inputs.shuffled.length / (B * D) : 0;

  const q = normalizeRows(inputs.query, B, D, normalize);
  const m = normalizeRows(inputs.fused, B, D, normalize);
  const dq = new Float64Array(B * D);
  const dm = new Float64Array(B * D);
  let dtauSum = 0; // sum over every logit of dL/dz * z
  const terms = { qm: 0, mq: 0, v: 0, t: 0, ms: 0 };

  // Fused logits z_ij = (c(q_i, m_j) - delta_i [i == j]) / tau, and dL/dz for L_qm (rows)
  // + L_mq (columns) over the allowed sets (docs/math.md §2, §3.2).
  const z = new Float64Array(B * B);
  for (let i = 0; i < B; i++)
    for (let j = 0; j < B; j++) z[i * B + j] = (dot(q.hat, i, m.hat, j, D) - (i === j ? margin(i) : 0)) / tau;
  const gz = new Float64Array(B * B);
  for (let i = 0; i < B; i++) {
    const cols: number[] = [];
    for (let j = 0; j < B; j++) if (allowed(i, j)) cols.push(j);
    const { loss, grad } = positiveSoftmax(cols.map((j) => z[i * B + j]), cols.indexOf(i));
    terms.qm += loss / B;
    cols.forEach((j, c) => (gz[i * B + j] += grad[c] / B));
  }
  for (let j = 0; j < B; j++) {
    const rows: number[] = [];
    for (let i = 0; i < B; i++) if (allowed(i, j)) rows.push(i);
    const { loss, grad } = positiveSoftmax(rows.map((i) => z[i * B + j]), rows.indexOf(j));
    terms.mq += loss / B;
    rows.forEach((i, r) => (gz[i * B + j] += grad[r] / B));
  }

  // L_ms: log(e^{z_ii} + sum_k e^{zs_ik}) - z_ii per row; the positive's gradient joins the
  // fused diagonal, the negatives' go to q and s (docs/math.md §3.4, §3.5).
  let dshuffled: Float64Array | undefined;
  if (gamma > 0 && inputs.shuffled) {
    const s = normalizeRows(inputs.shuffled, B * K, D, normalize);
    const ds = new Float64Array(B * K * D);
    for (let i = 0; i < B; i++) {
      const zs: number[] = [];
      for (let k = 0; k < K; k++) zs.push(dot(q.hat, i, s.hat, i * K + k, D) / tau);
      const { loss, grad } = positiveSoftmax([z[i * B + i], ...zs], 0);
      terms.ms += loss / B;
      gz[i * B + i] += (gamma * grad[0]) / B;
      for (let k = 0; k < K; k++) {
        const g = (gamma * grad[k + 1]) / B; // dL/dzs_ik
        dtauSum += g * zs[k];
        for (let d = 0; d < D; d++) {
          dq[i * D + d] += (g / tau) * s.hat[(i * K + k) * D + d];
          ds[(i * K + k) * D + d] += (g / tau) * q.hat[i * D + d];
        }
      }
    }
    dshuffled = normalizeBackward(ds, s.hat, s.div, B * K, D, normalize);
  } else if (inputs.shuffled) {
    dshuffled = new Float64Array(inputs.shuffled.length);
  }
  // Fused logits to rows, and their share of dL/dtau (docs/math.md §3.5, §3.7).
  for (let i = 0; i < B; i++)
    for (let j = 0; j < B; j++) {
      const g = gz[i * B + j];
      if (g === 0) continue;
      dtauSum += g * z[i * B + j];
      for (let d = 0; d < D; d++) {
        dq[i * D + d] += (g / tau) * m.hat[j * D + d];
        dm[j * D + d] += (g / tau) * q.hat[i * D + d];
      }
    }

  // L_v and L_t: one softmax per row over the visual (text) documents (docs/math.md §3.3).
  const rowTerm = (x: Vec | undefined, weight: number, key: 'v' | 't'): Float64Array | undefined => {
    if (!x) return undefined;
    if (!(weight > 0)) return new Float64Array(x.length);
    const h = normalizeRows(x, B, D, normalize);
    const dh = new Float64Array(B * D);
    for (let i = 0; i < B; i++) {
      const cols: number[] = [];
      const zi: number[] = [];
      for (let j = 0; j < B; j++)
        if (allowed(i, j)) {
          cols.push(j);
          zi.push(dot(q.hat, i, h.hat, j, D) / tau);
        }
      const { loss, grad } = positiveSoftmax(zi, cols.indexOf(i));
      terms[key] += loss / B;
      cols.forEach((j, c) => {
        const g = (weight * grad[c]) / B;
        dtauSum += g * zi[c];
        for (let d = 0; d < D; d++) {
          dq[i * D + d] += (g / tau) * h.hat[j * D + d];
          dh[j * D + d] += (g / tau) * q.hat[i * D + d];
        }
      });
    }
    return normalizeBackward(dh, h.hat, h.div, B, D, normalize);
  };
  const dvisual = rowTerm(inputs.visual, alpha, 'v');
  const dtext = rowTerm(inputs.text, beta, 't');
  if (!(gamma > 0)) terms.ms = 0;

  const grads: ReferenceResult['grads'] = {
    query: normalizeBackward(dq, q.hat, q.div, B, D, normalize),
    fused: normalizeBackward(dm, m.hat, m.div, B, D, normalize),
    temperature: -dtauSum / tau, // docs/math.md §3.7
  };
  if (dvisual) grads.visual = dvisual;
  if (dtext) grads.text = dtext;
  if (dshuffled) grads.shuffled = dshuffled;
  return {
    loss: terms.qm + terms.mq + alpha * terms.v + beta * terms.t + gamma * terms.ms,
    terms,
    grads,
  };
}
