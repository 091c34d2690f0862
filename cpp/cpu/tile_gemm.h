// The earlier tile-product interface, kept for callers outside the loss (retrieval.cpp):
// now a thin layer over gemm.h, with the same summation-order guarantee.
//
// gemm_acc: C (m x n, row stride ldc) += A (m x k) * B (k x n, row stride ldb), where
// element (i, p) of A is a[i * a_rs + p * a_cs].
#pragma once

#include <cstdint>

namespace mbvr::cpu {

void gemm_acc(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
              int64_t ldb, int64_t m, int64_t n, int64_t k);

// bt (k x n, row stride n) = transpose of x (n x k, row stride k).
void pack_transposed(float* bt, const float* x, int64_t n, int64_t k);

}  // namespace mbvr::cpu
