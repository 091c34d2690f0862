"""The MBVR loss (docs/math.md §2) in PyTorch autograd, for bench/compare-torch-cpu.ts.

The straightforward PyTorch formulation, the plain form of scripts/mbvr_torch.py (the
project's one PyTorch formulation): normalize, full B x B logit matrices, logsumexp minus
the positive in both directions for the fused term, one direction for visual and text,
and the modality-shuffled term as a (K+1)-way softmax with the positive first; backward
through autograd. tau = 0.05 (or the command's "temperature"), no labels or margin.

Run as a server: reads one JSON command per stdin line, answers one JSON line.
  {"cmd": "run", "batch": B, "dim": D, "k": K, "threads": T, "reps": R, "seed": S,
   "inputs": path?}   (path: query, fused, visual, text, shuffled as raw float32, in order)
    -> {"ms": [...], "loss": x, "rss_growth_mib": y}   (fwd+bwd wall times per rep)
Each command builds its inputs fresh; peak RSS growth is VmHWM after the first call
minus VmRSS before it, so run one size per process for a clean number (the bench does).
"""
import json
import os
import sys
import time

import torch

# The formulation lives in scripts/ beside its other users.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from mbvr_torch import mbvr_loss as _mbvr_loss  # noqa: E402


def mbvr_loss(q, m, v, t, s, tau=0.05):
    """q, m, v, t: (B, D); s: (B, K, D). Returns the scalar loss (the plain form)."""
    return _mbvr_loss(q, m, v, t, s, temperature=tau, positives_apart=False)[0]


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
