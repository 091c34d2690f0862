#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on the GPU machine, which has no Node.js, no npm
# and no registry. Writes into .device/ (git-ignored):
#   node.xz, node.stamp   this machine's node binary (xz -T0 -6; about 24 MiB), recompressed
#                         only when the stamp (version and size of the binary) changes;
#   remote-env.sh         sourced there: unpacks node onto PATH and prints node's version,
#                         the GPU's name, driver and memory, and nvcc's version;
#   suite/                the test suite compiled to plain JavaScript (tests that need npm
#                         packages beyond the addon - fast-check, tfjs, vega, npm itself -
#                         are left out by tsconfig.gpu.json).
# Run from the root after building the addon with CUDA (npm install), then call the device with
#   carry: [".device", "build/Release/mbvr.node", "dist"]
#   command: source .device/remote-env.sh && bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device

# ---- node ---------------------------------------------------------------------------
node_bin=$(command -v node)
stamp="$(node --version) $(stat -L -c %s "$node_bin")"
if [[ ! -f .device/node.xz || "$(cat .device/node.stamp 2>/dev/null)" != "$stamp" ]]; then
  echo "compressing node $(node --version) (about 20 s)..."
  xz -T0 -6 -c "$node_bin" > .device/node.xz.partial
  mv .device/node.xz.partial .device/node.xz
  echo "$stamp" > .device/node.stamp
fi

# ---- remote-env.sh (sourced on the GPU machine: no `set -e`, no exit) -----------------
cat > .device/remote-env.sh <<'EOF'
# Written by scripts/pack-gpu-suite.sh. On the GPU machine, from the repository root:
#   source .device/remote-env.sh
# Unpacks the carried node (once per machine and stamp) onto PATH, then prints what the
# machine has: node, GPU name / driver / memory (nvidia-smi), nvcc.
mbvr_node_dir="${TMPDIR:-/tmp}/mbvr-node"
mkdir -p "$mbvr_node_dir"
if [ ! -x "$mbvr_node_dir/node" ] || ! cmp -s .device/node.stamp "$mbvr_node_dir/node.stamp"; then
  xz -dc .device/node.xz > "$mbvr_node_dir/node.partial" && chmod +x "$mbvr_node_dir/node.partial" &&
    mv "$mbvr_node_dir/node.partial" "$mbvr_node_dir/node" && cp .device/node.stamp "$mbvr_node_dir/node.stamp" ||
    echo "remote-env: could not unpack .device/node.xz into $mbvr_node_dir" >&2
fi
case ":$PATH:" in *":$mbvr_node_dir:"*) ;; *) export PATH="$mbvr_node_dir:$PATH" ;; esac
echo "node   $(node --version 2>&1)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/gpu    /'
else
  echo "gpu    nvidia-smi not found"
fi
mbvr_nvcc=$(command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
if [ -n "$mbvr_nvcc" ]; then echo "nvcc   $("$mbvr_nvcc" --version | tail -1)"; else echo "nvcc   not found"; fi
unset mbvr_node_dir mbvr_nvcc
true
EOF

# ---- the suite as plain JavaScript ----------------------------------------------------
npm run build:ts >/dev/null
rm -rf .device/suite
npx tsc -p tsconfig.gpu.json
# `require('mbvr')` from the suite's folder (the tests' child processes) finds this
# package.json and the compiled dist/ beside it.
cp package.json .device/suite/package.json
cp -r dist .device/suite/dist
du -sh .device build/Release/mbvr.node dist 2>/dev/null | sed "s/^/carry: /" || true
