// The AVX2 + FMA microkernel: 6 x 16 tiles of C in 12 ymm accumulators (of 16
// registers), for x86-64 CPUs without AVX-512. Same structure as gemm_avx512.cpp.
#include "gemm_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MBVR_NO_SIMD)
#define MBVR_HAVE_AVX2_KERNEL 1
#endif

#ifdef MBVR_HAVE_AVX2_KERNEL
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace mbvr::cpu {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

// Lane mask for the first n of 8 lanes (maskload/maskstore read the sign bit).
__m256i lanes(int n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

// Loads and stores of 8 lanes, the first `m` of them when MASKED. Plain functions (not
// lambdas) so that the target pragma above certainly applies to them.
template <bool MASKED>
inline __m256 load8(const float* p, __m256i m) {
  return MASKED ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}
template <bool MASKED>
inline void store8(float* p, __m256i m, __m256 v) {
  if (MASKED)
    _mm256_maskstore_ps(p, m, v);
  else
    _mm256_storeu_ps(p, v);
}

// The 12 accumulators are named variables, not arrays: with arrays GCC kept a copy of
// most of them on the stack and stored it on every step (16 ymm registers leave no
// slack), which ran at a third of the FMA rate.
template <int ROWS, bool MASKED>
void tile(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb,
          float* c, int64_t ldc, int cols, bool accumulate) {
  const __m256i m0 = lanes(cols), m1 = lanes(cols - 8);
  constexpr auto load = load8<MASKED>;
  constexpr auto store = store8<MASKED>;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define MBVR_LOAD(I)                          \
  if (ROWS > I && accumulate) {               \
    c##I##0 = load(c + I * ldc, m0);          \
    c##I##1 = load(c + I * ldc + 8, m1);      \
  }
  MBVR_LOAD(0) MBVR_LOAD(1) MBVR_LOAD(2) MBVR_LOAD(3) MBVR_LOAD(4) MBVR_LOAD(5)
#undef MBVR_LOAD
  const float* a0 = a;
  const float* a3 = a + 3 * a_rs;
  const int64_t rs2 = 2 * a_rs;
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = load(b, m0);
    const __m256 b1 = load(b + 8, m1);
#define MBVR_ROW(I, BASE, OFF)                          \
  if (ROWS > I) {                                       \
    const __m256 ai = _mm256_broadcast_ss(BASE + OFF);  \
    c##I##0 = _mm256_fmadd_ps(ai, b0, c##I##0);         \
    c##I##1 = _mm256_fmadd_ps(ai, b1, c##I##1);         \
  }
    MBVR_ROW(0, a0, 0) MBVR_ROW(1, a0, a_rs) MBVR_ROW(2, a0, rs2)
    MBVR_ROW(3, a3, 0) MBVR_ROW(4, a3, a_rs) MBVR_ROW(5, a3, rs2)
#undef MBVR_ROW
    a0 += a_cs;
    a3 += a_cs;
    b += ldb;
  }
#define MBVR_STORE(I)                         \
  if (ROWS > I) {                             \
    store(c + I * ldc, m0, c##I##0);          \
    store(c + I * ldc + 8, m1, c##I##1);      \
  }
  MBVR_STORE(0) MBVR_STORE(1) MBVR_STORE(2) MBVR_STORE(3) MBVR_STORE(4) MBVR_STORE(5)
#undef MBVR_STORE
}

template <bool MASKED>
void dispatch_rows(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                   int64_t ldb, float* c, int64_t ldc, int rows, int cols, bool accumulate) {
  switch (rows) {
#define MBVR_CASE(R) \
  case R: return tile<R, MASKED>(k, a, a_rs, a_cs, b, ldb, c, ldc, cols, accumulate);
    MBVR_CASE(1) MBVR_CASE(2) MBVR_CASE(3) MBVR_CASE(4) MBVR_CASE(5) MBVR_CASE(6)
#undef MBVR_CASE
    default: return;
  }
}

void run(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb,
         float* c, int64_t ldc, int rows, int cols, bool accumulate) {
  if (cols == NR)
    dispatch_rows<false>(k, a, a_rs, a_cs, b, ldb, c, ldc, rows, cols, accumulate);
  else
    dispatch_rows<true>(k, a, a_rs, a_cs, b, ldb, c, ldc, rows, cols, accumulate);
}

}  // namespace
}  // namespace mbvr::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace mbvr::cpu {
MicroKernel microkernel_avx2() { return {"avx2 6x16", MR, NR, &run}; }
}  // namespace mbvr::cpu

#else

namespace mbvr::cpu {
MicroKernel microkernel_avx2() { return {"avx2 (not built)", 6, 16, nullptr}; }
}  // namespace mbvr::cpu

#endif
