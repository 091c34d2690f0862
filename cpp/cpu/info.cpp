// What the CPU backend runs on this machine (backends() in JavaScript); the CUDA
// backend's counterpart is cuda/device_info.cu.
#include "cpu_backend.h"
#include "gemm.h"
#include "gemm_bf16.h"

namespace mbvr::cpu {

CpuInfo info() {
  CpuInfo i;
  i.threads = resolve_threads(0);
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  i.simd = __builtin_cpu_supports("avx512f")                                         ? "avx512"
           : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "avx2"
                                                                              : "baseline";
#else
  i.simd = "portable";
#endif
  i.gemm = gemm_kernel_name();
  i.bf16_gemm = gemm_bf16_kernel_name();
  i.bf16_native = bf16_kernel_native();
  return i;
}

}  // namespace mbvr::cpu
