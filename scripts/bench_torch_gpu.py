#!/usr/bin/env python3
"""PyTorch eager baseline of the MBVR loss on the GPU, and the side-by-side table.

The whole loss of docs/math.md §2 (fused both directions + visual + text + one shuffled
negative per query, normalised rows, tau = 0.05, no labels or margin) forward and backward
through autograd, in the plain form of scripts/mbvr_torch.py (logsumexp - z_pos: what a
PyTorch user writes, and the form this baseline has always been timed in): median of 20
steps timed with CUDA events, extra memory = peak allocated above the inputs.
Precisions: fp32 (TF32 off), tf32 (TF32 on), bf16 (autocast).

  python3 scripts/bench_torch_gpu.py --batches 4096,32768 --json out/bench_torch.json
  python3 scripts/bench_torch_gpu.py --table out/bench_torch.json out/bench_mbvr.json \
      --json out/bench_table.json          # prints the side-by-side table only
"""
import argparse
import json
import math
import sys

PRECISIONS = ["fp32", "tf32", "bf16"]


def mbvr_loss_torch(q, m, v, t, s, tau):
    """The loss (one shuffled row per query: s is B x D) by scripts/mbvr_torch.py."""
    from mbvr_torch import mbvr_loss  # imports torch: not needed for --table

    loss, _ = mbvr_loss(q, m, v, t, s[:, None, :], temperature=tau, positives_apart=False)
    return loss


def bench(batch, dim, precision, steps):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    dev = "cuda"
    torch.cuda.empty_cache()
    g = torch.Generator(device=dev).manual_seed(0)
    xs = [torch.randn(batch, dim, device=dev, generator=g).requires_grad_() for _ in range(5)]
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()

    def step():
        for x in xs:
            x.grad = None
        if precision == "bf16":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = mbvr_loss_torch(*xs, 0.05)
        else:
            loss = mbvr_loss_torch(*xs, 0.05)
        loss.backward()

    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    peak = torch.cuda.max_memory_allocated() - base
    del xs
    torch.cuda.empty_cache()
    return times[len(times) // 2], peak


def run(args):
    import torch

    if not torch.cuda.is_available():
        print("torch sees no GPU: skipping the PyTorch benchmark")
        return []
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    rows = []
    batches = [int(b) for b in args.batches.split(",") if b]
    for batch in batches:
        for p in PRECISIONS:
            try:
                ms, peak = bench(batch, args.dim, p, args.steps)
                rows.append(dict(B=batch, D=args.dim, precision=p, ms=ms, extra_mib=peak / 2**20))
                print(f"torch B={batch:<7} D={args.dim} {p:<5} {ms:9.2f} ms  extra {peak / 2**30:.2f} GiB", flush=True)
            except torch.cuda.OutOfMemoryError:
                rows.append(dict(B=batch, D=args.dim, precision=p, ms=None, extra_mib=None, error="out of memory"))
                print(f"torch B={batch:<7} D={args.dim} {p:<5} out of memory", flush=True)
                torch.cuda.empty_cache()
    if args.largest:
        # The largest B PyTorch eager runs here (one step each, tf32), from B = 65536 up.
        batch, last_ok = 65536, None
        while batch <= args.largest:
            try:
                ms, peak = bench(batch, args.dim, "tf32", 1)
                last_ok = dict(B=batch, D=args.dim, precision="tf32", ms=ms, extra_mib=peak / 2**20, note="largest")
                print(f"torch B={batch:<7} D={args.dim} tf32  {ms:9.2f} ms (1 step)  extra {peak / 2**30:.2f} GiB", flush=True)
                batch *= 2
            except torch.cuda.OutOfMemoryError:
                print(f"torch B={batch:<7} D={args.dim} tf32  out of memory", flush=True)
                torch.cuda.empty_cache()
                break
        if last_ok:
            rows.append(last_ok)
    return rows


def table(torch_rows, mbvr_rows):
    """Side by side: B, precision, torch ms, mbvr ms (fwd+bwd, default kernel version = fastest)."""
    out = []
    ours = {}
    for r in mbvr_rows:
        if r.get("mode") != "fwd+bwd":
            continue
        key = (r["B"], r["precision"])
        if key not in ours or r["ms"] < ours[key]["ms"]:
            ours[key] = r
    theirs = {(r["B"], r["precision"]): r for r in torch_rows if r.get("note") != "largest"}
    keys = sorted(set(ours) | set(theirs), key=lambda k: (k[0], PRECISIONS.index(k[1]) if k[1] in PRECISIONS else 9))
    print()
    print(f"{'B':>8} {'D':>4} {'prec':<5} {'torch ms':>10} {'mbvr ms':>10} {'speed-up':>9} {'torch extra':>12} {'mbvr extra':>11} {'mbvr v':>6}")
    for k in keys:
        t, o = theirs.get(k), ours.get(k)
        tm = t["ms"] if t and t.get("ms") is not None else None
        om = o["ms"] if o else None
        speed = f"{tm / om:8.2f}x" if tm and om else "       -"
        te = f"{t['extra_mib'] / 1024:9.2f} GiB" if t and t.get("extra_mib") is not None else ("      OOM" if t else "        -")
        oe = f"{o['extra_mib'] / 1024:8.2f} GiB" if o else "        -"
        print(f"{k[0]:>8} {512:>4} {k[1]:<5} {tm if tm is not None else float('nan'):>10.2f} "
              f"{om if om is not None else float('nan'):>10.2f} {speed:>9} {te:>12} {oe:>11} {o['version'] if o else '-':>6}")
        out.append(dict(B=k[0], precision=k[1], torch_ms=tm, mbvr_ms=om, mbvr_version=o["version"] if o else None,
                        torch_extra_mib=t.get("extra_mib") if t else None, mbvr_extra_mib=o["extra_mib"] if o else None))
    for r in torch_rows:
        if r.get("note") == "largest":
            print(f"largest B PyTorch eager ran (tf32, D={r['D']}): {r['B']} ({r['ms']:.1f} ms, {r['extra_mib'] / 1024:.1f} GiB extra)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default="4096,32768")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--largest", type=int, default=0, help="also find the largest B (doubling from 65536) up to this")
    ap.add_argument("--json", default="")
    ap.add_argument("--table", nargs=2, metavar=("TORCH_JSON", "MBVR_JSON"), help="only print the side-by-side table")
    args = ap.parse_args()
    if args.table:
        with open(args.table[0]) as f:
            torch_rows = json.load(f)
        with open(args.table[1]) as f:
            mbvr_rows = json.load(f)
        rows = table(torch_rows, mbvr_rows)
    else:
        rows = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
