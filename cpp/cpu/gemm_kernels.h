// Register-blocked microkernels behind gemm() (gemm.h) and gemm_bf16_packed()
// (gemm_bf16.h), one per instruction set. Each
// computes one tile of at most mr x nr elements of C:
//   C (rows x cols) = or += A (rows x k) B (k x cols),  rows <= mr, cols <= nr
// with A and B addressed as in gemm.h. Edge tiles (rows < mr or cols < nr) run the
// same FMA chain per element as full ones, so a result never depends on the tiling.
#pragma once

#include <cstdint>

#include "gemm_bf16.h"

namespace mbvr::cpu {

using MicroKernelFn = void (*)(int64_t k, const float* a, int64_t a_rs, int64_t a_cs,
                               const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
                               int cols, bool accumulate);

struct MicroKernel {
  const char* name;
  int mr, nr;
  MicroKernelFn run;
};

// Each returns a kernel with run == nullptr when it was not compiled in.
MicroKernel microkernel_avx512();  // gemm_avx512.cpp: 12 x 32, AVX-512F
MicroKernel microkernel_avx2();    // gemm_avx2.cpp:    6 x 16, AVX2 + FMA
MicroKernel microkernel_portable();  // gemm.cpp:       4 x 16, plain C++

// bf16 (gemm_bf16_packed): one tile of at most mr x kBf16Nr elements of C: C = or +=
// A (rows x k, row stride lda)
// times one packed panel (starting at k-pair 0 of this k-chunk). Edge tiles run the
// same per-element chain as full ones.
using Bf16MicroKernelFn = void (*)(int64_t k, const bf16* a, int64_t lda, const bf16* panel,
                                   float* c, int64_t ldc, int rows, int cols, bool accumulate);
struct Bf16MicroKernel {
  const char* name;
  int mr;
  Bf16MicroKernelFn run;  // nullptr when not compiled in
};
Bf16MicroKernel microkernel_bf16_avx512();    // gemm_bf16_avx512.cpp: 12 x 32, AVX512-BF16
Bf16MicroKernel microkernel_bf16_portable();  // gemm_bf16.cpp: plain C++

}  // namespace mbvr::cpu
