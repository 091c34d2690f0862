"""The MBVR loss of SPEC section 2 in PyTorch (autograd), for bench/compare-torch-cpu.ts.

The straightforward PyTorch formulation: normalize, full B x B logit matrices, cross
entropy in both directions for the fused term, one direction for visual and text, and the
modality-shuffled term as a (K+1)-way softmax with the positive first; backward through
autograd. Labels (duplicates) are masked with -inf off the diagonal.

Run as a server: reads one JSON command per stdin line, answers one JSON line.
  {"cmd": "run", "batch": B, "dim": D, "k": K, "threads": T, "reps": R, "seed": S,
   "inputs": path?}   (path: query, fused, visual, text, shuffled as raw float32, in order)
    -> {"ms": [...], "loss": x, "rss_growth_mib": y}   (fwd+bwd wall times per rep)
Each command builds its inputs fresh; peak RSS growth is VmHWM after the first call
minus VmRSS before it, so run one size per process for a clean number (the bench does).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def mbvr_loss(q, m, v, t, s, tau=0.05, alpha=1.0, beta=1.0, gamma=1.0, margin=0.0, labels=None):
    """q, m, v, t: (B, D); s: (B, K, D). Returns the scalar loss."""
    q, m, v, t = (F.normalize(x, dim=-1) for x in (q, m, v, t))
    s = F.normalize(s, dim=-1)
    b = q.shape[0]
    eye = torch.eye(b, dtype=torch.bool)
    z = (q @ m.T - margin * eye) / tau
    zv = (q @ v.T) / tau
    zt = (q @ t.T) / tau
    if labels is not None:
        dup = (labels[:, None] == labels[None, :]) & ~eye
        z, zv, zt = (x.masked_fill(dup, float("-inf")) for x in (z, zv, zt))
    target = torch.arange(b)
    l_qm = F.cross_entropy(z, target)
    l_mq = F.cross_entropy(z.T, target)
    l_v = F.cross_entropy(zv, target)
    l_t = F.cross_entropy(zt, target)
    zs = torch.einsum("bd,bkd->bk", q, s) / tau
    ms = torch.cat([z.diagonal()[:, None], zs], dim=1)
    l_ms = F.cross_entropy(ms, torch.zeros(b, dtype=torch.long))
    return l_qm + l_mq + alpha * l_v + beta * l_t + gamma * l_ms


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run(cmd):
    torch.set_num_threads(int(cmd["threads"]))
    b, d, k = int(cmd["batch"]), int(cmd["dim"]), int(cmd["k"])
    shapes = [(b, d)] * 4 + [(b, k, d)]
    if cmd.get("inputs"):
        flat = torch.from_file(cmd["inputs"], size=b * d * (4 + k), dtype=torch.float32).clone()
        inputs, offset = [], 0
        for shape in shapes:
            n = shape[0] * shape[1] * (shape[2] if len(shape) > 2 else 1)
            inputs.append(flat[offset:offset + n].reshape(shape).clone())
            offset += n
        del flat
    else:
        gen = torch.Generator().manual_seed(int(cmd.get("seed", 0)))
        inputs = [torch.rand(shape, generator=gen) - 0.5 for shape in shapes]
    for x in inputs:
        x.requires_grad_(True)
    rss_before = status_kib("VmRSS")
    times, loss, growth = [], 0.0, float("nan")
    for rep in range(int(cmd.get("reps", 1))):
        for x in inputs:
            x.grad = None
        start = time.perf_counter()
        out = mbvr_loss(*inputs, tau=float(cmd.get("temperature", 0.05)))
        out.backward()
        times.append((time.perf_counter() - start) * 1e3)
        loss = out.item()
        if rep == 0:  # the peak of one call, as for ours
            growth = (status_kib("VmHWM") - rss_before) / 1024
    return {"ms": times, "loss": loss, "rss_growth_mib": growth}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        try:
            reply = run(cmd)
        except Exception as e:  # report, keep serving
            reply = {"error": repr(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
