// The AVX-512 microkernel: 12 x 32 tiles of C in 24 zmm accumulators. Per step p it
// loads two vectors of B and broadcasts 12 values of A straight from memory (embedded
// broadcast operands), so 26 of the 32 registers hold data and no A packing is needed.
// Compiled for AVX-512 through a pragma after the standard headers, so that no inline
// function shared with other files is built with AVX-512 (which could then run, and
// fault, on an older CPU). Chosen at run time by gemm.cpp only when the CPU has it.
#include "gemm_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MBVR_NO_SIMD)
#define MBVR_HAVE_AVX512_KERNEL 1
#endif

#ifdef MBVR_HAVE_AVX512_KERNEL
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#endif

namespace mbvr::cpu {
namespace {

constexpr int MR = 12;
constexpr int NR = 32;

// ROWS rows of C; MASKED: fewer than 32 columns (lanes beyond `cols` are neither read
// nor written).
template <int ROWS, bool MASKED>
void tile(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb,
          float* c, int64_t ldc, int cols, bool accumulate) {
  __mmask16 m0 = 0xFFFF, m1 = 0xFFFF;
  if (MASKED) {
    m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
    m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
  }
  __m512 acc0[ROWS], acc1[ROWS];
  for (int i = 0; i < ROWS; ++i) {
    if (accumulate) {
      acc0[i] = MASKED ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_loadu_ps(c + i * ldc);
      acc1[i] = MASKED ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : _mm512_loadu_ps(c + i * ldc + 16);
    } else {
      acc0[i] = _mm512_setzero_ps();
      acc1[i] = _mm512_setzero_ps();
    }
  }
  // Row pointers in groups of three, so every A address is base + {0, 1, 2} * a_rs.
  const float* a0 = a;
  const float* a3 = a + 3 * a_rs;
  const float* a6 = a + 6 * a_rs;
  const float* a9 = a + 9 * a_rs;
  const int64_t rs2 = 2 * a_rs;
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b0 = MASKED ? _mm512_maskz_loadu_ps(m0, b) : _mm512_loadu_ps(b);
    const __m512 b1 = MASKED ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_loadu_ps(b + 16);
#define MBVR_ROW(I, BASE, OFF)                              \
  if (ROWS > I) {                                           \
    const __m512 ai = _mm512_set1_ps(BASE[OFF]);            \
    acc0[I] = _mm512_fmadd_ps(ai, b0, acc0[I]);             \
    acc1[I] = _mm512_fmadd_ps(ai, b1, acc1[I]);             \
  }
    MBVR_ROW(0, a0, 0) MBVR_ROW(1, a0, a_rs) MBVR_ROW(2, a0, rs2)
    MBVR_ROW(3, a3, 0) MBVR_ROW(4, a3, a_rs) MBVR_ROW(5, a3, rs2)
    MBVR_ROW(6, a6, 0) MBVR_ROW(7, a6, a_rs) MBVR_ROW(8, a6, rs2)
    MBVR_ROW(9, a9, 0) MBVR_ROW(10, a9, a_rs) MBVR_ROW(11, a9, rs2)
#undef MBVR_ROW
    a0 += a_cs;
    a3 += a_cs;
    a6 += a_cs;
    a9 += a_cs;
    b += ldb;
  }
  for (int i = 0; i < ROWS; ++i) {
    if (MASKED) {
      _mm512_mask_storeu_ps(c + i * ldc, m0, acc0[i]);
      _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc1[i]);
    } else {
      _mm512_storeu_ps(c + i * ldc, acc0[i]);
      _mm512_storeu_ps(c + i * ldc + 16, acc1[i]);
    }
  }
}

template <bool MASKED>
void dispatch_rows(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                   int64_t ldb, float* c, int64_t ldc, int rows, int cols, bool accumulate) {
  switch (rows) {
#define MBVR_CASE(R) \
  case R: return tile<R, MASKED>(k, a, a_rs, a_cs, b, ldb, c, ldc, cols, accumulate);
    MBVR_CASE(1) MBVR_CASE(2) MBVR_CASE(3) MBVR_CASE(4) MBVR_CASE(5) MBVR_CASE(6)
    MBVR_CASE(7) MBVR_CASE(8) MBVR_CASE(9) MBVR_CASE(10) MBVR_CASE(11) MBVR_CASE(12)
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
MicroKernel microkernel_avx512() { return {"avx512 12x32", MR, NR, &run}; }
}  // namespace mbvr::cpu

#else  // no AVX-512 kernel in this build

namespace mbvr::cpu {
MicroKernel microkernel_avx512() { return {"avx512 (not built)", 12, 32, nullptr}; }
}  // namespace mbvr::cpu

#endif
