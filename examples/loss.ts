// `npm run demo` (until the training demo lands): one batch of random embeddings
// through mbvrLoss, printing every term, the gradient norms and the time.
import { backends, mbvrLoss, modalityShuffle } from '../src/index';

async function main(): Promise<void> {
  const batch = 2048;
  const dim = 256;
  const k = 2;
  let seed = 1;
  const rows = (n: number) =>
    Float32Array.from({ length: n }, () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5);
  const query = rows(batch * dim);
  const text = rows(batch * dim);
  const visual = rows(batch * dim);
  // A toy fusion H(t, v) = t + v; the shuffled negatives fuse row i's text with the
  // visuals of other rows, chosen by modalityShuffle.
  const fused = text.map((t, i) => t + visual[i]);
  const pi = modalityShuffle(batch, { k, seed: 7 });
  const shuffled = new Float32Array(batch * k * dim);
  for (let i = 0; i < batch; i++)
    for (let j = 0; j < k; j++)
      for (let d = 0; d < dim; d++) shuffled[(i * k + j) * dim + d] = text[i * dim + d] + visual[pi[i * k + j] * dim + d];

  const info = backends();
  console.log(`cpu: ${info.cpu.threads} threads (${info.cpu.simd}); cuda: ${info.cuda.available ? info.cuda.devices.map((d) => d.name).join(', ') : `unavailable (${info.cuda.reason})`}`);
  const t0 = performance.now();
  const out = await mbvrLoss({ batch, dim, query, fused, visual, text, shuffled }, { temperature: 0.05, margin: 0.1 });
  const ms = performance.now() - t0;
  const norm = (a?: Float32Array) => (a ? Math.sqrt(a.reduce((s, x) => s + x * x, 0)).toExponential(3) : '-');
  console.log(`B=${batch} D=${dim} K=${k} on ${out.backend}: ${ms.toFixed(1)} ms (forward + backward)`);
  console.log(`loss ${out.loss.toFixed(5)} = qm ${out.terms.qm.toFixed(5)} + mq ${out.terms.mq.toFixed(5)} + v ${out.terms.v.toFixed(5)} + t ${out.terms.t.toFixed(5)} + ms ${out.terms.ms.toFixed(5)}`);
  const g = out.grads!;
  console.log(`|dL/dquery| ${norm(g.query)}  |dL/dfused| ${norm(g.fused)}  |dL/dvisual| ${norm(g.visual)}  |dL/dtext| ${norm(g.text)}  |dL/dshuffled| ${norm(g.shuffled)}  dL/dtau ${g.temperature.toFixed(4)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
