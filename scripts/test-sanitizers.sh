#!/usr/bin/env bash
# `npm run test:asan`: the compute core and the addon under AddressSanitizer + UBSan,
# a leak check, and an allocation failure injected. Both sanitizer builds are
# RelWithDebInfo (-O2 -g: line numbers in the reports, near-Release speed).
#   1. The core's C++ tests (cpp/tests/*.cpp: core_check exercises every entry point and
#      error path) built by CMake with MBVR_SANITIZE=ON, run by ctest under ASan, UBSan
#      and LeakSanitizer (cmake/tests.cmake sets their options): any memory error,
#      undefined behaviour or leak fails it.
#   2. The addon built with ASan + UBSan (build-asan/, CUDA off) and the JavaScript test
#      suite run against it (LD_PRELOAD of the ASan runtime, MBVR_ADDON_PATH). Leak
#      detection is off for this step: Node itself does not free everything at exit;
#      leaks of the binding are covered by the repeated-call RSS test in memory.test.ts.
#   3. Fault injection: with malloc refusing large requests, an allocation failure in the
#      core is a JS Error and the next call works.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-asan
mkdir -p "$out"

echo "== 1. the core's C++ tests with ASan + UBSan + LSan (ctest)"
cmake -S . -B "$out/core-tests" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMBVR_SANITIZE=ON -DMBVR_TESTS=ON \
  -DMBVR_CUDA=OFF >/dev/null
cmake --build "$out/core-tests" --parallel 2 >/dev/null
(cd "$out/core-tests" && ctest --output-on-failure)

echo "== 2. the test suite against an ASan + UBSan build of the addon"
npx cmake-js compile -O "$out" -B RelWithDebInfo --CDMBVR_SANITIZE=ON --CDMBVR_CUDA=OFF >/dev/null
asan_runtime=$(g++ -print-file-name=libasan.so)
ubsan_runtime=$(g++ -print-file-name=libubsan.so)
npm run build:ts >/dev/null
tests=$(ls test/*.test.ts | grep -v -e package.test.ts -e memory.test.ts -e core.test.ts)  # core: step 1
LD_PRELOAD="$asan_runtime:$ubsan_runtime" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  MBVR_ADDON_PATH="$PWD/$out/RelWithDebInfo/mbvr.node" MBVR_FUZZ_RUNS="${MBVR_FUZZ_RUNS:-1000}" \
  node --import tsx --test --test-concurrency=1 $tests

echo "== 3. an allocation failure is a JS Error, and the next call works"
# cpp/tests/fail_large_malloc.c makes malloc refuse single requests above 32 MiB: the
# loss's 64 MiB logit cache (B = 4096) then fails inside the core (the normal build),
# which must surface as an Error while the process lives on.
gcc -shared -fPIC -O1 cpp/tests/fail_large_malloc.c -o "$out/fail_large_malloc.so"
LD_PRELOAD="$PWD/$out/fail_large_malloc.so" MBVR_FAIL_MALLOC_ABOVE=$((32 << 20)) node -e "
const { mbvrLossSync } = require('./dist/index.js');
const rows = (b, d) => Float32Array.from({ length: b * d }, (_, i) => Math.sin(i));
const call = (b) => mbvrLossSync({ batch: b, dim: 8, query: rows(b, 8), fused: rows(b, 8) }, { alpha: 0, beta: 0, gamma: 0, logitCacheBytes: 2 ** 30 });
try { call(4096); console.error('expected an out-of-memory Error'); process.exit(1); }
catch (e) { if (!(e instanceof Error) || !/out of memory/.test(e.message)) throw e; console.log('ok: ' + e.message); }
if (!Number.isFinite(call(64).loss)) process.exit(1);
console.log('ok: the next call works');"
