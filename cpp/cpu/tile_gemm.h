// Dense tile products for the CPU backend: the only place the O(B^2 D) work happens.
//
// gemm_acc: C (m x n, row stride ldc) += A (m x k) * B (k x n, row stride ldb), where
// element (i, p) of A is a[i * a_rs + p * a_cs]. Strides let one routine serve the
// three shapes the loss needs:
//   logits         S  = Q^ X^T : A = Q^ (a_rs = D, a_cs = 1), B = X^ tile packed transposed
//   row gradients  dQ += G X^  : A = G  (a_rs = ldg, a_cs = 1), B = X^ rows
//   col gradients  dX += G^T Q^: A = G^T (a_rs = 1, a_cs = ldg), B = Q^ rows
// Accumulation over p runs in increasing order in every variant, so a result does not
// depend on how the caller splits work between threads.
#pragma once

#include <cstdint>

namespace mbvr::cpu {

void gemm_acc(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
              int64_t ldb, int64_t m, int64_t n, int64_t k);

// bt (k x n, row stride n) = transpose of x (n x k, row stride k).
void pack_transposed(float* bt, const float* x, int64_t n, int64_t k);

}  // namespace mbvr::cpu
