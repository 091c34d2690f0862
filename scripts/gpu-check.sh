#!/usr/bin/env bash
# Everything the CUDA backend needs checked on the GPU machine, in one run (about 6 min
# on an H200). From the repository root, on the device machine:
#
#   here:  npm install && bash scripts/pack-gpu-suite.sh
#   there: source .device/remote-env.sh && bash scripts/gpu-check.sh
#          (carry: .device, build/Release/mbvr.node, dist)
#
# Steps (each logged to $OUT/<step>.log; a failing step does not stop the others):
#   1. nvidia-smi
#   2. build the standalone harness cpp/cuda/dev/check_kernels.cu (nvcc, sm_90)
#   3. correctness: every precision and kernel version vs a float64 reference
#   4. PyTorch float64 autograd cross-check (scripts/torch_reference.py)
#   5. compute-sanitizer memcheck and racecheck on small cases (when installed)
#   6. the self-check the addon runs on its first CUDA use (backends().cuda)
#   7. the Node test suite with MBVR_TEST_BACKEND=cuda, per precision (npm test where
#      npm is; else the suite compiled by scripts/pack-gpu-suite.sh, with plain node)
#   8. benchmarks: mbvr (device-resident API) and PyTorch eager, side by side
# The table of step results is printed last; exit status 1 if any step failed.
#
# Environment: OUT (default out/gpu-check), MBVR_DEV_BUILD (default /tmp/mbvr-dev),
# PYTHON (default python3), MBVR_GPU_CHECK_SKIP (space-separated step names to skip:
# build check torch memcheck racecheck synccheck self_check node bench_mbvr bench_torch).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT="${OUT:-$ROOT/out/gpu-check}"
BUILD="${MBVR_DEV_BUILD:-/tmp/mbvr-dev}"
SKIP=" ${MBVR_GPU_CHECK_SKIP:-} "
mkdir -p "$OUT" "$BUILD"
BIN="$BUILD/check_kernels"
JOBS="$(nproc 2>/dev/null || echo 4)"
PY="${PYTHON:-python3}"
export PATH="$PATH:/usr/local/cuda/bin"

RESULTS=()
FAILED=0
# step NAME CMD...: runs CMD with its output in $OUT/NAME.log (and on the screen).
step() {
  local name=$1
  shift
  if [[ "$SKIP" == *" $name "* ]]; then
    RESULTS+=("skip  $name")
    return 0
  fi
  echo
  echo "=== $name: $*"
  local t0=$SECONDS rc=0
  "$@" 2>&1 | tee "$OUT/$name.log" || rc=$?
  local took=$((SECONDS - t0))
  if [[ $rc -eq 0 ]]; then
    RESULTS+=("ok    $name (${took} s)")
  else
    RESULTS+=("FAIL  $name (${took} s, exit $rc; see $OUT/$name.log)")
    FAILED=1
  fi
}

# ---- 1. the machine ---------------------------------------------------------------
nvidia-smi | tee "$OUT/nvidia-smi.txt" || true
nvcc --version | tail -2 || true

# ---- 2. the harness ---------------------------------------------------------------
# (errexit does not apply inside a step, so every command checks its own status.)
build_harness() {
  rm -rf "$BUILD/obj" && mkdir -p "$BUILD/obj" || return 1
  # Host sources of the core (whatever cpp/ holds now), compiled in parallel.
  ls cpp/*.cpp cpp/cpu/*.cpp | grep -v cuda_disabled | xargs -P "$JOBS" -I{} sh -c \
    'g++ -O3 -std=c++17 -pthread -fopenmp -Icpp -c "$1" -o "$2/obj/$(echo "$1" | tr / _).o"' _ {} "$BUILD" &
  local host_pid=$!
  ls cpp/cuda/*.cu cpp/cuda/dev/check_kernels.cu | xargs -P "$JOBS" -I{} sh -c \
    'nvcc -O3 -std=c++17 --expt-relaxed-constexpr -lineinfo -arch=sm_90 -Xcompiler -fopenmp -Icpp -c "$1" -o "$2/obj/$(echo "$1" | tr / _).o"' _ {} "$BUILD" || { wait $host_pid; return 1; }
  wait $host_pid || return 1
  nvcc -arch=sm_90 "$BUILD"/obj/*.o -o "$BIN" -lpthread -lgomp || return 1
  echo "built $BIN"
}
step build build_harness

if [[ -x "$BIN" ]]; then
  # ---- 3. correctness -------------------------------------------------------------
  step check "$BIN" --check

  # ---- 4. PyTorch float64 autograd ------------------------------------------------
  step torch "$PY" scripts/torch_reference.py --bin "$BIN" --precisions fp32,tf32,bf16 \
    --json "$OUT/torch_reference.json"

  # ---- 5. compute-sanitizer -------------------------------------------------------
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)
  if [[ -n "$SAN" ]]; then
    step memcheck timeout 300 "$SAN" --tool memcheck --error-exitcode 9 "$BIN" --small
    step racecheck timeout 300 "$SAN" --tool racecheck --error-exitcode 9 "$BIN" --small
    step synccheck timeout 300 "$SAN" --tool synccheck --error-exitcode 9 "$BIN" --small
  else
    echo "compute-sanitizer not found: memcheck/racecheck skipped" | tee "$OUT/sanitize.log"
    RESULTS+=("skip  sanitize (compute-sanitizer not installed)")
  fi
fi

# ---- 6. the self-check, as the addon runs it on its first CUDA use ------------------
if command -v node >/dev/null && [[ -f build/Release/mbvr.node && -f dist/index.js ]]; then
  step self_check node -e '
    const t = Date.now();
    const cuda = require("./dist/index.js").backends().cuda;
    console.log(JSON.stringify({ ...cuda, firstCallMs: Date.now() - t }, null, 2));
    if (!cuda.available) process.exit(1);'
fi

# ---- 7. the Node test suite on the CUDA backend -------------------------------------
# Without npm (the GPU machine), the suite compiled by scripts/pack-gpu-suite.sh runs
# with plain node against the addon in build/Release.
node_tests() {
  local p rc=0
  for p in tf32 bf16 fp32; do
    echo "--- node tests, MBVR_TEST_BACKEND=cuda MBVR_TEST_PRECISION=$p"
    if command -v npm >/dev/null && [[ -d node_modules ]]; then
      MBVR_TEST_BACKEND=cuda MBVR_TEST_PRECISION=$p npm test || rc=1
    else
      (cd .device/suite && MBVR_ADDON_PATH="$ROOT/build/Release/mbvr.node" MBVR_TEST_BACKEND=cuda \
        MBVR_TEST_PRECISION=$p node --test --test-concurrency=1 test/*.test.js) || rc=1
    fi
  done
  return $rc
}
if command -v node >/dev/null && { [[ -d node_modules ]] || [[ -d .device/suite ]]; } && [[ -f build/Release/mbvr.node ]]; then
  step node node_tests
else
  echo "node, the compiled suite (.device/suite) or build/Release/mbvr.node missing: Node tests skipped" | tee "$OUT/node.log"
  RESULTS+=("skip  node (node, suite or addon missing)")
fi

# ---- 8. benchmarks ------------------------------------------------------------------
if [[ -x "$BIN" ]]; then
  step bench_mbvr "$BIN" --bench 4096,32768 --big --json "$OUT/bench_mbvr.json"
  step bench_torch "$PY" scripts/bench_torch_gpu.py --batches 4096,32768 --largest 131072 \
    --json "$OUT/bench_torch.json"
  if [[ -f "$OUT/bench_mbvr.json" && -f "$OUT/bench_torch.json" ]]; then
    "$PY" scripts/bench_torch_gpu.py --table "$OUT/bench_torch.json" "$OUT/bench_mbvr.json" \
      --json "$OUT/bench_table.json" | tee "$OUT/bench_table.txt" || true
  fi
fi

# ---- summary ------------------------------------------------------------------------
echo
echo "=== gpu-check summary (logs in $OUT)"
for r in "${RESULTS[@]}"; do echo "$r"; done
grep -h "^FAIL" "$OUT"/check.log "$OUT"/torch.log 2>/dev/null | head -40 || true
[[ -f "$OUT/bench_table.txt" ]] && cat "$OUT/bench_table.txt"
exit $FAILED
