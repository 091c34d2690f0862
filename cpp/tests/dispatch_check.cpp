// backends().cpu.simd against the CPU: the instruction set it names must be the one
// whose MBVR_DISPATCH clones this CPU runs, by the rule each compiler documents for its
// resolver (cpu/simd.h: GCC 12+ picks the x86-64-v4 / -v3 clones by ISA level, Clang
// and older GCC the "avx512f" / "avx2" ones by that single feature). Without run-time
// dispatch, the compile-time target decides. Exit status 0 = agrees.
#include <cstdio>
#include <cstring>
#include <string>

#include "../cpu/simd.h"
#include "../mbvr.h"

namespace {

const char* expected_simd() {
#if defined(MBVR_HAVE_DISPATCH)
  __builtin_cpu_init();
#if defined(__clang__) || __GNUC__ < 12
  if (__builtin_cpu_supports("avx512f")) return "avx512";
  if (__builtin_cpu_supports("avx2")) return "avx2";
#else
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512";
  if (__builtin_cpu_supports("x86-64-v3")) return "avx2";
#endif
  return "baseline";
#elif defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__x86_64__)
  return "baseline";
#else
  return "portable";
#endif
}

}  // namespace

int main() {
  const std::string reported = mbvr::cpu_info().simd;
  const char* expected = expected_simd();
#if defined(MBVR_HAVE_DISPATCH)
  const char* how = "run-time dispatch";
#else
  const char* how = "compile-time target";
#endif
  if (reported != expected) {
    std::fprintf(stderr, "FAIL: dispatch_check: cpu_info().simd is '%s', but this CPU runs the '%s' clones (%s)\n",
                 reported.c_str(), expected, how);
    return 1;
  }
  std::printf("ok: dispatch_check, simd '%s' (%s)\n", reported.c_str(), how);
  return 0;
}
