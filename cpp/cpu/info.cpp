// What the CPU backend runs on this machine (backends() in JavaScript); the CUDA
// backend's counterpart is cuda/device_info.cu.
#include "cpu_backend.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "simd.h"

namespace mbvr::cpu {

// The instruction set of the MBVR_DISPATCH clones (the element-wise kernels) on this
// machine. With run-time dispatch it is itself a multi-versioned function, one version
// per clone under the same target strings, so the compiler's own resolver picks the
// answer exactly as it picks the kernels' clones (a CPUID test of ours could disagree:
// GCC's AVX-512 clone wants x86-64-v4, Clang's only AVX512F). Without dispatch, the
// compile-time target is what every kernel runs. (Not in an anonymous namespace: Clang
// then warns that the versions it dispatches to are unused.)
#ifdef MBVR_HAVE_DISPATCH
__attribute__((target(MBVR_CLONE_AVX512))) const char* dispatched_simd() { return "avx512"; }
__attribute__((target(MBVR_CLONE_AVX2))) const char* dispatched_simd() { return "avx2"; }
__attribute__((target("default"))) const char* dispatched_simd() { return "baseline"; }
#else
const char* dispatched_simd() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__x86_64__)
  return "baseline";
#else
  return "portable";  // not x86: plain C++ vectorized for the compile-time target
#endif
}
#endif

CpuInfo info() {
  CpuInfo i;
  i.threads = resolve_threads(0);
  i.simd = dispatched_simd();
  i.gemm = gemm_kernel_name();
  i.bf16_gemm = gemm_bf16_kernel_name();
  i.bf16_native = bf16_kernel_native();
  return i;
}

}  // namespace mbvr::cpu
