// The AVX512-BF16 microkernel: 12 x 32 tiles of C in 24 zmm accumulators. Per k-pair it
// loads two vectors of packed B (16 columns x 2 k each) and broadcasts one 32-bit pair
// of A per row (a row's pair is adjacent in memory, so no A packing is needed): 24
// vdpbf16ps, each two products per lane.
// Compiled for AVX512-BF16 through a pragma after the standard headers, so that no inline
// function shared with other files is built with AVX-512 (which could then run, and
// fault, on an older CPU). Chosen at run time by gemm_bf16.cpp only when the CPU has it.
#include "gemm_bf16.h"
#include "gemm_kernels.h"

// vdpbf16ps intrinsics: GCC 10 and clang 9 onwards.
#if defined(__x86_64__) && !defined(MBVR_NO_SIMD) && \
    ((defined(__clang__) && __clang_major__ >= 9) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 10))
#define MBVR_HAVE_BF16_KERNEL 1
#endif

#ifdef MBVR_HAVE_BF16_KERNEL
#include <cstring>

#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512bf16")
#endif

namespace mbvr::cpu {
namespace {

constexpr int MR = 12;
static_assert(kBf16Nr == 32, "two zmm of pairs per panel row");

// The pair (A(i, p), A(i, p + 1)) as one lane: element p in the low half, as in B.
inline __m512bh load_pair(const bf16* a) {
  int32_t v;
  std::memcpy(&v, a, sizeof v);
  return (__m512bh)_mm512_set1_epi32(v);
}
// Odd k's last step: the lone A(i, k - 1), zero-extended (A(i, k) is not read); B's pad
// row is zero as well.
inline __m512bh load_lone(const bf16* a) { return (__m512bh)_mm512_set1_epi32(*a); }

// ROWS rows of C; MASKED: fewer than 32 columns (lanes beyond `cols` of C are neither read
// nor written; B's are zero in the panel, so it is read whole).
template <int ROWS, bool MASKED>
void tile(int64_t k, const bf16* a, int64_t lda, const bf16* b, float* c, int64_t ldc, int cols,
          bool accumulate) {
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
  // Row pointers in groups of three, so every A address is base + {0, 1, 2} * lda.
  const bf16* a0 = a;
  const bf16* a3 = a + 3 * lda;
  const bf16* a6 = a + 6 * lda;
  const bf16* a9 = a + 9 * lda;
  const int64_t lda2 = 2 * lda;
#define MBVR_ROW(I, BASE, OFF, LOAD)                      \
  if (ROWS > I) {                                         \
    const __m512bh ai = LOAD(BASE + OFF);                 \
    acc0[I] = _mm512_dpbf16_ps(acc0[I], ai, b0);          \
    acc1[I] = _mm512_dpbf16_ps(acc1[I], ai, b1);          \
  }
#define MBVR_STEP(LOAD)                                                                   \
  {                                                                                       \
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);                                  \
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 32);                             \
    MBVR_ROW(0, a0, 0, LOAD) MBVR_ROW(1, a0, lda, LOAD) MBVR_ROW(2, a0, lda2, LOAD)       \
    MBVR_ROW(3, a3, 0, LOAD) MBVR_ROW(4, a3, lda, LOAD) MBVR_ROW(5, a3, lda2, LOAD)       \
    MBVR_ROW(6, a6, 0, LOAD) MBVR_ROW(7, a6, lda, LOAD) MBVR_ROW(8, a6, lda2, LOAD)       \
    MBVR_ROW(9, a9, 0, LOAD) MBVR_ROW(10, a9, lda, LOAD) MBVR_ROW(11, a9, lda2, LOAD)     \
  }
  for (int64_t t = k / 2; t > 0; --t) {
    MBVR_STEP(load_pair)
    a0 += 2;
    a3 += 2;
    a6 += 2;
    a9 += 2;
    b += 2 * kBf16Nr;
  }
  if (k & 1) MBVR_STEP(load_lone)
#undef MBVR_STEP
#undef MBVR_ROW
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
void dispatch_rows(int64_t k, const bf16* a, int64_t lda, const bf16* b, float* c, int64_t ldc,
                   int rows, int cols, bool accumulate) {
  switch (rows) {
#define MBVR_CASE(R) \
  case R: return tile<R, MASKED>(k, a, lda, b, c, ldc, cols, accumulate);
    MBVR_CASE(1) MBVR_CASE(2) MBVR_CASE(3) MBVR_CASE(4) MBVR_CASE(5) MBVR_CASE(6)
    MBVR_CASE(7) MBVR_CASE(8) MBVR_CASE(9) MBVR_CASE(10) MBVR_CASE(11) MBVR_CASE(12)
#undef MBVR_CASE
    default: return;
  }
}

void run(int64_t k, const bf16* a, int64_t lda, const bf16* panel, float* c, int64_t ldc, int rows,
         int cols, bool accumulate) {
  if (cols == kBf16Nr)
    dispatch_rows<false>(k, a, lda, panel, c, ldc, rows, cols, accumulate);
  else
    dispatch_rows<true>(k, a, lda, panel, c, ldc, rows, cols, accumulate);
}

}  // namespace
}  // namespace mbvr::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace mbvr::cpu {
Bf16MicroKernel microkernel_bf16_avx512() { return {"avx512bf16 12x32", MR, &run}; }
}  // namespace mbvr::cpu

#else  // no AVX512-BF16 kernel in this build

namespace mbvr::cpu {
Bf16MicroKernel microkernel_bf16_avx512() { return {"avx512bf16 (not built)", 12, nullptr}; }
}  // namespace mbvr::cpu

#endif
