#include "tile_gemm.h"

#include "simd.h"

namespace mbvr::cpu {
namespace {

// Register block: MR rows of C by NR columns, accumulated over all of k in registers.
// B rows are contiguous (NR floats at a time), A values are broadcast.
constexpr int MR = 4;
constexpr int NR = 32;

template <int R, int N>
MBVR_INLINE void block(float* __restrict c, int64_t ldc, const float* __restrict a, int64_t a_rs,
                       int64_t a_cs, const float* __restrict b, int64_t ldb, int64_t k) {
  float acc[R][N] = {};
  for (int64_t p = 0; p < k; ++p) {
    const float* __restrict bp = b + p * ldb;
    for (int i = 0; i < R; ++i) {
      const float ai = a[i * a_rs + p * a_cs];
      for (int j = 0; j < N; ++j) acc[i][j] += ai * bp[j];
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < N; ++j) c[i * ldc + j] += acc[i][j];
}

// Edge blocks (fewer than MR rows or NR columns): same order of summation, plain loops.
MBVR_INLINE void edge(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs,
                      const float* b, int64_t ldb, int64_t m, int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i) {
    float acc[NR] = {};
    for (int64_t p = 0; p < k; ++p) {
      const float ai = a[i * a_rs + p * a_cs];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) acc[j] += ai * bp[j];
    }
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] += acc[j];
  }
}

}  // namespace

MBVR_DISPATCH
void gemm_acc(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
              int64_t ldb, int64_t m, int64_t n, int64_t k) {
  // Column panels of B outermost: a k x NR panel (k <= a few thousand) stays in L2
  // while every row block of A streams past it.
  for (int64_t j0 = 0; j0 < n; j0 += NR) {
    const int64_t nb = n - j0 < NR ? n - j0 : NR;
    int64_t i0 = 0;
    if (nb == NR) {
      for (; i0 + MR <= m; i0 += MR)
        block<MR, NR>(c + i0 * ldc + j0, ldc, a + i0 * a_rs, a_rs, a_cs, b + j0, ldb, k);
    }
    if (i0 < m) edge(c + i0 * ldc + j0, ldc, a + i0 * a_rs, a_rs, a_cs, b + j0, ldb, m - i0, nb, k);
  }
}

void pack_transposed(float* bt, const float* x, int64_t n, int64_t k) {
  constexpr int64_t T = 16;  // transpose in small squares to stay cache friendly
  for (int64_t j0 = 0; j0 < n; j0 += T)
    for (int64_t p0 = 0; p0 < k; p0 += T)
      for (int64_t j = j0; j < j0 + T && j < n; ++j)
        for (int64_t p = p0; p < p0 + T && p < k; ++p) bt[p * n + j] = x[j * k + p];
}

}  // namespace mbvr::cpu
