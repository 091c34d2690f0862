#!/usr/bin/env bash
# `npm run test:asan`: the compute core and the addon under AddressSanitizer + UBSan,
# and a leak check.
#   1. cpp/tests/core_check.cpp (the core without Node) built with ASan, UBSan and
#      LeakSanitizer: every entry point and error path; any memory error, undefined
#      behaviour or leak fails it.
#   2. The addon built with ASan + UBSan (build-asan/, CUDA off) and the JavaScript test
#      suite run against it (LD_PRELOAD of the ASan runtime, MBVR_ADDON_PATH). Leak
#      detection is off for this step: Node itself does not free everything at exit;
#      leaks of the binding are covered by the repeated-call RSS test in memory.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-asan
mkdir -p "$out"

echo "== 1. core_check with ASan + UBSan + LSan"
g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
  -Icpp cpp/tests/core_check.cpp cpp/mbvr.cpp cpp/validation.cpp cpp/evaluation.cpp cpp/cpu/*.cpp cpp/cuda_disabled.cpp -lpthread -o "$out/core_check"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/core_check"

echo "== 2. the test suite against an ASan + UBSan build of the addon"
npx cmake-js compile -O "$out" --CDMBVR_SANITIZE=ON --CDMBVR_CUDA=OFF >/dev/null
asan_runtime=$(g++ -print-file-name=libasan.so)
ubsan_runtime=$(g++ -print-file-name=libubsan.so)
npm run build:ts >/dev/null
tests=$(ls test/*.test.ts | grep -v -e package.test.ts -e memory.test.ts)
LD_PRELOAD="$asan_runtime:$ubsan_runtime" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  MBVR_ADDON_PATH="$out/Release/mbvr.node" MBVR_FUZZ_RUNS="${MBVR_FUZZ_RUNS:-1000}" \
  node --import tsx --test --test-concurrency=1 $tests
