#!/usr/bin/env python3
"""The MBVR loss in PyTorch: the project's one PyTorch formulation (docs/math.md section 2).

Used by scripts/torch_reference.py (a float64 autograd cross-check of the addon),
bench/torch_loss.py (the CPU baseline of bench/compare-torch-cpu.ts) and
scripts/bench_torch_gpu.py (the GPU baseline); test/transcriptions.test.ts holds it to
src/reference.ts, the project's float64 oracle, at ~1e-9 relative. It lives in scripts/
beside two of its three users (Python finds it there); bench/torch_loss.py adds this
folder to its path.

    loss, terms = mbvr_loss(query, fused, visual, text, shuffled, temperature=0.05,
                            alpha=1.0, beta=1.0, gamma=1.0, margin=0.0, labels=None,
                            normalize=True, positives_apart=True)

query, fused, visual, text: (B, D); shuffled: (B, K, D), K >= 1. visual, text and
shuffled may be None when their weight is 0. temperature: a number or a 0-d tensor (give
it requires_grad for dL/dtau). margin: a number or a (B,) tensor (docs/math.md §2: it
lowers each fused positive). labels: None or a (B,) integer tensor of video ids; rows with
the same id are left out of each other's soft-maxes. Gradients come from autograd.

Two forms of each soft-max term, equal in exact arithmetic:
  positives_apart=True   (docs/math.md §3.1) a = logsumexp over the other entries - z_pos,
                         term = softplus(a). Accurate to the last digits even when the
                         positive dominates (confident soft-maxes: small tau, near-duplicate
                         rows), where logsumexp - z_pos and its gradient p_pos - 1 cancel.
                         For cross-checks.
  positives_apart=False  logsumexp over every allowed entry - z_pos: what a PyTorch user
                         writes; the benchmarks time this form (no extra B x B masking).

As a program, it evaluates case folders (the format of cpp/cuda/dev/case_io.h) in float64
on the CPU and writes DIR/<prefix>_scalars.txt and DIR/<prefix>_d_*.f64:

    python3 scripts/mbvr_torch.py [--plain] [--prefix torch] DIR...
"""
import argparse
import array
import math
import os
import sys

import torch
import torch.nn.functional as F

NORM_EPS = 1e-12
GRAD_NAMES = ["d_query", "d_fused", "d_visual", "d_text", "d_shuffled"]
SCALARS = ["loss", "qm", "mq", "v", "t", "ms", "dtau"]


def _softplus(a):
    """log(1 + e^a) for any a, -inf included, with a gradient free of NaN (no clamping
    threshold, unlike F.softplus, whose linear branch is off by e^-20 at a = 20)."""
    return a.clamp(min=0) + torch.log1p(torch.exp(-a.abs()))


def _positive_apart(others, pos, dim):
    """-log p_pos of the soft-maxes along `dim` whose positives `pos` are kept apart;
    `others` holds every other entry (-inf where left out). A soft-max with no other entry
    (B = 1, or only duplicates) is the positive alone: 0."""
    alone = torch.isneginf(others).all(dim)
    # Shift the empty rows to finite values so that their (unused) gradient is not NaN.
    lse = torch.logsumexp(others.masked_fill(alone.unsqueeze(dim), 0.0), dim)
    a = torch.where(alone, torch.full_like(lse, -math.inf), lse - pos)
    return _softplus(a)


def mbvr_loss(query, fused, visual=None, text=None, shuffled=None, *, temperature=0.05, alpha=1.0,
              beta=1.0, gamma=1.0, margin=0.0, labels=None, normalize=True, positives_apart=True):
    """L = L_qm + L_mq + alpha L_v + beta L_t + gamma L_ms (docs/math.md §2).

    Returns (loss, terms), terms a dict of 0-d tensors qm, mq, v, t, ms; a term whose
    weight is 0 is not computed and is 0.
    """
    tau = temperature
    b = query.shape[0]
    device = query.device
    needed = [("fused", fused, True), ("visual", visual, alpha > 0), ("text", text, beta > 0)]
    for name, x, used in [("query", query, True)] + needed:
        if used and (x is None or x.dim() != 2 or x.shape != query.shape):
            raise ValueError(f"{name} must be a (B, D) tensor of the query's shape when used")
    if gamma > 0 and (shuffled is None or shuffled.dim() != 3 or shuffled.shape[0] != b
                      or shuffled.shape[2] != query.shape[1] or shuffled.shape[1] < 1):
        raise ValueError("shuffled must be a (B, K, D) tensor, K >= 1, when gamma > 0")

    def hat(x):  # docs/math.md §1: x / max(||x||, 1e-12), as F.normalize
        return F.normalize(x, dim=-1, eps=NORM_EPS) if normalize else x

    def eye():  # made only where needed: the benchmarks' plain form allocates no extra B x B
        return torch.eye(b, dtype=torch.bool, device=device)

    q, m = hat(query), hat(fused)
    # Entries left out of the plain soft-maxes (duplicates), and of the "others" (also the positive).
    dup = None if labels is None else (labels[:, None] == labels[None, :]) & ~eye()
    apart = None
    if positives_apart:
        apart = eye() if dup is None else eye() | dup

    def term(z, dim):
        """Mean over the soft-maxes along `dim` (1: one per row, 0: one per column) of
        logsumexp over the allowed set - the positive, the positives on the diagonal."""
        pos = z.diagonal()
        if positives_apart:
            return _positive_apart(z.masked_fill(apart, -math.inf), pos, dim).mean()
        zm = z if dup is None else z.masked_fill(dup, -math.inf)
        return (torch.logsumexp(zm, dim) - pos).mean()

    c = q @ m.T
    if torch.is_tensor(margin):
        c = c - torch.diag(margin.to(c.dtype))
    elif margin != 0:
        c = c - margin * eye().to(c.dtype)  # (a bool eye would make the product float32)
    z = c / tau
    zero = torch.zeros((), dtype=z.dtype, device=device)
    terms = {"qm": term(z, 1), "mq": term(z, 0), "v": zero, "t": zero, "ms": zero}
    if alpha > 0:
        terms["v"] = term(q @ hat(visual).T / tau, 1)
    if beta > 0:
        terms["t"] = term(q @ hat(text).T / tau, 1)
    if gamma > 0:
        # zs_ik = c(q_i, s_ik) / tau against the fused positive z_ii, the K negatives apart.
        zs = (q[:, None, :] * hat(shuffled)).sum(-1) / tau
        pos = z.diagonal()
        if positives_apart:
            terms["ms"] = _softplus(torch.logsumexp(zs, 1) - pos).mean()
        else:
            terms["ms"] = (torch.logsumexp(torch.cat([pos[:, None], zs], 1), 1) - pos).mean()
    loss = terms["qm"] + terms["mq"] + alpha * terms["v"] + beta * terms["t"] + gamma * terms["ms"]
    return loss, terms


# ---- case folders (cpp/cuda/dev/case_io.h) -------------------------------------------------

def read_case(folder):
    """(meta, tensors) of a case folder: meta a dict of numbers, tensors float32/int32."""
    meta = {"K": 1, "alpha": 1.0, "beta": 1.0, "gamma": 1.0, "normalize": 1, "labels": 0,
            "margin_mode": 0, "margin": 0.2}
    with open(os.path.join(folder, "meta.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[0] != "precision":
                meta[parts[0]] = float(parts[1])
    for key in ("B", "D", "K", "normalize", "labels", "margin_mode"):
        meta[key] = int(meta[key])

    def load(name, dtype):
        with open(os.path.join(folder, name), "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=dtype)

    B, D, K = meta["B"], meta["D"], meta["K"]
    x = {k: load(k + ".f32", torch.float32).reshape(B, D) for k in ("query", "fused", "visual", "text")}
    x["shuffled"] = load("shuffled.f32", torch.float32).reshape(B, K, D)
    if meta["labels"]:
        x["labels"] = load("labels.i32", torch.int32)
    if meta["margin_mode"] == 2:
        x["margin"] = load("margin.f32", torch.float32)
    return meta, x


def evaluate(meta, x, positives_apart=True, device="cpu"):
    """Loss, terms, dL/dtau and the gradient of every input (float64 autograd): a dict of
    floats and float64 tensors named as case_io.h's outputs."""
    keys = ["query", "fused", "visual", "text", "shuffled"]
    shapes = {k: (meta["B"], meta["D"]) for k in keys}
    shapes["shuffled"] = (meta["B"], meta["K"], meta["D"])
    t = {k: x[k].to(device=device, dtype=torch.float64).reshape(shapes[k]).requires_grad_(True) for k in keys}
    tau = torch.tensor(meta["tau"], dtype=torch.float64, device=device, requires_grad=True)
    if meta["margin_mode"] == 2:
        margin = x["margin"].to(device=device, dtype=torch.float64)
    else:
        margin = meta["margin"] if meta["margin_mode"] == 1 else 0.0
    labels = x["labels"].to(device=device, dtype=torch.int64) if "labels" in x else None
    loss, terms = mbvr_loss(t["query"], t["fused"], t["visual"], t["text"], t["shuffled"], temperature=tau,
                            alpha=meta["alpha"], beta=meta["beta"], gamma=meta["gamma"], margin=margin,
                            labels=labels, normalize=bool(meta["normalize"]), positives_apart=positives_apart)
    loss.backward()
    out = {"loss": loss.item(), **{k: float(v) for k, v in terms.items()},
           "dtau": tau.grad.item() if tau.grad is not None else 0.0}
    for name, key in zip(GRAD_NAMES, keys):
        g = t[key].grad  # None: the input played no part (its weight is 0)
        out[name] = (g if g is not None else torch.zeros_like(t[key])).detach().cpu().reshape(-1)
    return out


def write_result(folder, prefix, out):
    with open(os.path.join(folder, prefix + "_scalars.txt"), "w") as f:
        for k in SCALARS:
            f.write(f"{k} {out[k]!r}\n")
    for name in GRAD_NAMES:
        with open(os.path.join(folder, f"{prefix}_{name}.f64"), "wb") as f:
            array.array("d", out[name].tolist()).tofile(f)


def main():
    ap = argparse.ArgumentParser(description="Evaluate case folders (cpp/cuda/dev/case_io.h) in float64.")
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--plain", action="store_true", help="the plain form (logsumexp - z_pos) instead of positives apart")
    ap.add_argument("--prefix", default="torch", help="output file prefix (default: torch)")
    args = ap.parse_args()
    for folder in args.folders:
        meta, x = read_case(folder)
        write_result(folder, args.prefix, evaluate(meta, x, positives_apart=not args.plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
