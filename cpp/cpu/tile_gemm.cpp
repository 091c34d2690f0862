#include "tile_gemm.h"

#include "gemm.h"

namespace mbvr::cpu {

void gemm_acc(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
              int64_t ldb, int64_t m, int64_t n, int64_t k) {
  gemm(c, ldc, a, a_rs, a_cs, b, ldb, m, n, k, true);
}

void pack_transposed(float* bt, const float* x, int64_t n, int64_t k) {
  constexpr int64_t T = 16;  // transpose in small squares to stay cache friendly
  for (int64_t j0 = 0; j0 < n; j0 += T)
    for (int64_t p0 = 0; p0 < k; p0 += T)
      for (int64_t j = j0; j < j0 + T && j < n; ++j)
        for (int64_t p = p0; p < p0 + T && p < k; ++p) bt[p * n + j] = x[j * k + p];
}

}  // namespace mbvr::cpu
