#!/usr/bin/env bash
# Two builds of the addon, alternated on one loss size in fresh processes, so that both
# see the same machine load (the machines are shared): prints each round's best of 2
# timed calls (after one warm-up call) for A and B. Extra environment (MBVR_GEMM_KERNEL,
# MBVR_THREADS, ...) passes through to both.
#
#   bash bench/ab-addons.sh A B [batch=4096] [dim=512] [rounds=4] [precision=fp32] [sync|async]
#
# A and B are each an addon (.node, loaded through this checkout's dist/) or a package
# root (a checkout with its own dist/ and build/, e.g. an old commit's worktree: its
# TypeScript and its addon belong together). Build an old checkout with
#   git worktree add /tmp/old <commit> && cd /tmp/old && npm ci (or npx cmake-js compile && npm run build:ts)
set -euo pipefail
a=$1 b=$2 batch=${3:-4096} dim=${4:-512} rounds=${5:-4} precision=${6:-fp32} mode=${7:-sync}
here=$(cd "$(dirname "$0")/.." && pwd)
measure() {
  local root=$here addon=$1
  if [[ -d $1 ]]; then root=$(cd "$1" && pwd); addon=""; fi
  MBVR_ADDON_PATH=$addon node -e '
    const mbvr = require(process.argv[1]);
    const [B, D] = [Number(process.argv[2]), Number(process.argv[3])];
    let s = 1;
    const rows = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 4294967296 - 0.5; } return a; };
    const inputs = { batch: B, dim: D, query: rows(B * D), fused: rows(B * D), visual: rows(B * D), text: rows(B * D), shuffled: rows(B * D) };
    const options = { backend: "cpu", temperature: 0.05, precision: process.argv[4] };
    const times = [];
    (async () => {
      for (let r = 0; r < 3; r++) {
        const t = process.hrtime.bigint();
        if (process.argv[5] === "async") await mbvr.mbvrLoss(inputs, options); else mbvr.mbvrLossSync(inputs, options);
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      console.log(Math.min(...times.slice(1)).toFixed(0));
    })();' "$root" "$batch" "$dim" "$precision" "$mode"
}
ra="" rb=""
for _ in $(seq "$rounds"); do
  ra="$ra $(measure "$a")"
  rb="$rb $(measure "$b")"
done
echo "A ($a): $ra ms"
echo "B ($b): $rb ms"
