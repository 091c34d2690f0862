#!/usr/bin/env python3
"""Float64 PyTorch autograd cross-check of mbvr's loss and every gradient.

For each configuration: random float32 inputs are written to a case folder (the format
of cpp/cuda/dev/case_io.h), the harness (cpp/cuda/dev/check_kernels --io DIR) computes
the loss with mbvr at each precision and writes its outputs there, and this script
compares them with a float64 autograd evaluation of docs/math.md section 2 by the
project's PyTorch formulation (scripts/mbvr_torch.py, positives kept apart as in §3.1;
on the GPU when torch sees one). Relative error ||out - ref|| / ||ref|| per output;
limits (docs/math.md §5) 1e-5 (fp32, cpu), 2e-3 (tf32), 2e-2 (bf16).

  python3 scripts/torch_reference.py --bin build-dev/check_kernels \
      --precisions fp32,tf32,bf16 --json out/torch_reference.json

Exit status 1 when any output is over its limit or not finite.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

from mbvr_torch import GRAD_NAMES as GRADS, evaluate

LIMITS = {"cpu": 1e-5, "fp32": 1e-5, "tf32": 2e-3, "bf16": 2e-2}

# Random unit-scale rows (docs/math.md §5: the accuracy bounds hold for those); `corr` ties each positive to its query a
# little (corr / tau stays well below saturation, so gradients are not ~0 by cancellation).
CONFIGS = [
    dict(name="B1 D8", B=1, D=8, K=1, tau=0.05, corr=0.1, seed=1),
    dict(name="B512 D512 labels margins", B=512, D=512, K=1, tau=0.05, labels=1, margin_mode=2, corr=0.3, seed=2),
    dict(name="B1000 D256 K2 tau.01", B=1000, D=256, K=2, tau=0.01, corr=0.05, seed=3),
    dict(name="B300 D100 K3 nonorm b0", B=300, D=100, K=3, tau=0.2, normalize=0, alpha=0.5, beta=0.0, seed=4),
    dict(name="B2048 D512 tau.02 labels", B=2048, D=512, K=1, tau=0.02, labels=1, corr=0.1, seed=5),
    dict(name="B130 D64 tau1 scalar margin", B=130, D=64, K=1, tau=1.0, margin_mode=1, corr=0.9, seed=6),
]


def full(cfg):
    c = dict(K=1, tau=0.05, alpha=1.0, beta=1.0, gamma=1.0, normalize=1, labels=0, margin_mode=0, margin=0.2,
             corr=0.0, seed=0)
    c.update(cfg)
    return c


def make_inputs(c):
    rng = np.random.default_rng(c["seed"])
    B, D, K, r = c["B"], c["D"], c["K"], c["corr"]
    w = math.sqrt(1 - r * r)
    sd = 1 / math.sqrt(D)
    q = rng.standard_normal((B, D))
    x = {
        "query": q,
        "fused": r * q + w * rng.standard_normal((B, D)),
        "visual": 0.5 * r * q + math.sqrt(1 - 0.25 * r * r) * rng.standard_normal((B, D)),
        "text": r * q + w * rng.standard_normal((B, D)),
        "shuffled": rng.standard_normal((B * K, D)),
    }
    x = {k: (v * sd).astype(np.float32) for k, v in x.items()}
    if c["labels"]:
        x["labels"] = rng.integers(0, max(1, B // 2) + 1, size=B).astype(np.int32)
    if c["margin_mode"] == 2:
        x["margin"] = rng.uniform(0, 0.3, size=B).astype(np.float32)
    return x


def torch_reference(c, x, device):
    """Loss, terms, dL/dtau and every gradient in float64 (scripts/mbvr_torch.py)."""
    out = evaluate(c, {k: torch.from_numpy(v) for k, v in x.items()}, positives_apart=True, device=device)
    for name in GRADS:
        out[name] = out[name].numpy()
    return out


def run_mbvr(binary, c, x, precision, folder):
    with open(os.path.join(folder, "meta.txt"), "w") as f:
        for key in ["B", "D", "K", "tau", "alpha", "beta", "gamma", "normalize", "labels", "margin_mode", "margin"]:
            f.write(f"{key} {c[key]!r}\n")
        f.write(f"precision {precision}\n")
    for k, v in x.items():
        v.tofile(os.path.join(folder, k + (".i32" if k == "labels" else ".f32")))
    for name in GRADS:
        path = os.path.join(folder, f"out_{name}.f32")
        if os.path.exists(path):
            os.remove(path)
    subprocess.run([binary, "--io", folder], check=True, stdout=subprocess.DEVNULL)
    out = {}
    with open(os.path.join(folder, "out_scalars.txt")) as f:
        for line in f:
            k, v = line.split()
            out[k] = float(v)
    for name in GRADS:
        path = os.path.join(folder, f"out_{name}.f32")
        if os.path.exists(path):
            out[name] = np.fromfile(path, dtype=np.float32).astype(np.float64)
    return out


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        return math.inf
    den = np.linalg.norm(b)
    num = np.linalg.norm(a - b)
    return float(num / den) if den > 0 else float(num)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build-dev/check_kernels")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--json", default="")
    ap.add_argument("--only", default="", help="run only configurations whose name contains this")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precisions = [p for p in args.precisions.split(",") if p]
    rows, failures = [], 0
    print(f"torch {torch.__version__} float64 reference on {device}")
    with tempfile.TemporaryDirectory() as folder:
        for cfg in CONFIGS:
            c = full(cfg)
            if args.only and args.only not in c["name"]:
                continue
            x = make_inputs(c)
            ref = torch_reference(c, x, device)
            for p in precisions:
                out = run_mbvr(args.bin, c, x, p, folder)
                errs = {}
                for k in ["loss", "qm", "mq", "v", "t", "ms", "dtau"]:
                    if k in ("v", "t", "ms") and ref[k] == 0 and out[k] == 0:
                        continue
                    errs[k] = rel([out[k]], [ref[k]])
                for name in GRADS:
                    if name in out:
                        errs[name] = rel(out[name], ref[name])
                worst = max(errs, key=lambda k: errs[k])
                ok = errs[worst] <= LIMITS[p]
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {c['name']:<30} {p:<5} worst {errs[worst]:.2e} ({worst}, limit {LIMITS[p]:.0e})")
                if not ok:
                    print("       " + " ".join(f"{k}={v:.1e}" for k, v in errs.items()))
                rows.append({"config": c["name"], "precision": p, "ok": ok, "errors": errs})
    print(f"{failures} failure(s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
