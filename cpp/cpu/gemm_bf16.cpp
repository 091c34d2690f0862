#include "gemm_bf16.h"
#include "gemm_kernels.h"
#include "simd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

namespace mbvr::cpu {
namespace {

// Branch-free (a select) so that the conversion loops below vectorize (MBVR_INLINE: it is
// compiled into each MBVR_DISPATCH clone of its callers, for that clone's vectors).
MBVR_INLINE bf16 round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  // Round to nearest even: adding 0x7FFF plus the kept part's lowest bit carries into the
  // kept part exactly when the dropped half is above one half, or equal with an odd lsb.
  // Finite values that round past the largest bf16 carry into the exponent (inf; made
  // the largest finite bf16 below). inf itself has a zero dropped half and is unchanged.
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  // A NaN could carry into (or past) the exponent; keep its top bits and set the quiet
  // bit, so that a NaN whose payload is all in the dropped half stays a NaN.
  const uint32_t nan = (u >> 16) | 0x40u;
  // A finite value above the largest bf16 (about 3.39e38) saturates to it rather than
  // becoming inf: the inputs are finite, and an inf would turn the loss into NaN.
  const bool finite = (u & 0x7FFFFFFFu) < 0x7F800000u;
  const uint32_t largest = (u >> 16 & 0x8000u) | 0x7F7Fu;
  const uint32_t kept = finite && (rounded & 0x7FFFu) == 0x7F80u ? largest : rounded;
  return static_cast<bf16>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : kept);
}

inline float widen_bf16(bf16 x) {
  const uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// A pair (lo at the lower address) as the 32-bit word it makes on a little-endian CPU.
MBVR_INLINE uint32_t pair_bits(bf16 lo, bf16 hi) { return lo | static_cast<uint32_t>(hi) << 16; }

// 32-bit words over bf16 storage (a pair per word) without breaking aliasing rules.
typedef uint32_t pair_word __attribute__((may_alias));

inline void put_pair(bf16* dst, bf16 lo, bf16 hi) {
  const uint32_t v = pair_bits(lo, hi);
  std::memcpy(dst, &v, sizeof v);
}

// ---- the portable microkernel: plain C++, for CPUs (or compilers) without AVX512-BF16 --

constexpr int kPortableMr = 4;

// Per pair, the high product first then the low, each += one fp32 rounding (the product
// is exact): the order in which Intel documents vdpbf16ps, and which Zen 4 was measured
// to follow bit for bit (bench/gemm_bf16.cpp), denormals aside (vdpbf16ps flushes them).
void portable_run(int64_t k, const bf16* a, int64_t lda, const bf16* panel, float* c,
                  int64_t ldc, int rows, int cols, bool accumulate) {
  float acc[kPortableMr][kBf16Nr];
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < kBf16Nr; ++j) acc[i][j] = accumulate && j < cols ? c[i * ldc + j] : 0.0f;
  float lo[kBf16Nr], hi[kBf16Nr];
  for (int64_t p = 0; p < k; p += 2) {
    const bf16* bp = panel + p * kBf16Nr;  // pair p / 2 starts at (p / 2) * 2 * kBf16Nr
    for (int j = 0; j < kBf16Nr; ++j) {
      lo[j] = widen_bf16(bp[2 * j]);
      hi[j] = widen_bf16(bp[2 * j + 1]);
    }
    for (int i = 0; i < rows; ++i) {
      const float a_lo = widen_bf16(a[i * lda + p]);
      const float a_hi = p + 1 < k ? widen_bf16(a[i * lda + p + 1]) : 0.0f;  // odd k: no read
      for (int j = 0; j < kBf16Nr; ++j) acc[i][j] = (acc[i][j] + a_hi * hi[j]) + a_lo * lo[j];
    }
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) c[i * ldc + j] = acc[i][j];
}

// ---- dispatch ---------------------------------------------------------------------

// MBVR_GEMM_KERNEL (read by gemm.cpp too) names the best kernel allowed: anything but
// "avx512" (avx2, portable) rules out the AVX512-BF16 kernel, as it does the fp32 one.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// AVX512-BF16 is CPUID leaf 7, sub-leaf 1, EAX bit 5; asked directly because older
// compilers' __builtin_cpu_supports does not know the name. (avx512f, checked with it,
// also covers the OS saving the zmm registers.)
bool cpu_has_avx512_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
  return (eax >> 5) & 1u;
}
#endif

Bf16MicroKernel select_kernel() {
  const char* want = std::getenv("MBVR_GEMM_KERNEL");
  const bool allow_native = !want || std::strcmp(want, "avx512") == 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (allow_native && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      cpu_has_avx512_bf16()) {
    Bf16MicroKernel k = microkernel_bf16_avx512();
    if (k.run) return k;
  }
#else
  (void)allow_native;
#endif
  return microkernel_bf16_portable();
}

const Bf16MicroKernel& kernel() {
  static const Bf16MicroKernel selected = select_kernel();
  return selected;
}

// Steps of p per pass over C (even, so that chunks start on a pair): one panel's chunk
// (kKc * 64 bytes) stays in L2 next to the A block, and D = 512 (the logits and dX)
// needs a single pass. Storing C between passes is exact: chunking never changes a result.
constexpr int64_t kKc = 1024;
// Rows of A per block: the block (kMc x kKc bf16, 528 KiB) stays in L2 while every panel
// passes over it.
constexpr int64_t kMc = 264;  // a multiple of 12 and 4

// Side of convert_transposed_bf16's blocks: each destination row gets 64 contiguous bytes
// (a cache line) per block; measured faster than 16, 64 or 128 on 4096 x 512.
constexpr int64_t kTile = 32;
// k-pairs per block of pack_bt_bf16: the panel rows written (64 x 128 bytes) stay in L1
// while the panel's 32 columns fill them.
constexpr int64_t kPackPairs = 64;

}  // namespace

Bf16MicroKernel microkernel_bf16_portable() { return {"portable bf16 4x32", kPortableMr, &portable_run}; }

bf16 to_bf16(float x) { return round_bf16(x); }
float from_bf16(bf16 x) { return widen_bf16(x); }

bool bf16_kernel_native() { return kernel().run != &portable_run; }
const char* gemm_bf16_kernel_name() { return kernel().name; }

MBVR_DISPATCH
void convert_rows_bf16_simd(bf16* dst, int64_t ld_dst, const float* src, int64_t ld_src,
                            int64_t rows, int64_t cols, const float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float s = scale ? scale[r] : 1.0f;  // x * 1 is exact: no separate unscaled loop
    const float* in = src + r * ld_src;
    bf16* out = dst + r * ld_dst;
    for (int64_t c = 0; c < cols; ++c) out[c] = round_bf16(in[c] * s);
    if ((cols & 1) && ld_dst > cols) out[cols] = 0;
  }
}
void convert_rows_bf16(bf16* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                       int64_t cols, const float* scale) {
  convert_rows_bf16_simd(dst, ld_dst, src, ld_src, rows, cols, scale);
}

MBVR_DISPATCH
void convert_transposed_bf16_simd(bf16* dst, int64_t ld_dst, const float* src, int64_t ld_src,
                                  int64_t rows, int64_t cols, const float* scale) {
  // Blocked through an L1 tile of row pairs: two source rows are converted at a time,
  // contiguously (vectorized), into 32-bit pairs, which are then written out one
  // destination row (kTile contiguous bf16) at a time, a pair per store. Walking the
  // source by columns instead reads lines whose stride (the row length, often a power of
  // two) maps them to the same few L1 sets, which evict one another before reuse.
  uint32_t tile[kTile / 2][kTile];
  for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
    const int64_t w = std::min(kTile, cols - c0);
    for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
      const int64_t h = std::min(kTile, rows - r0);
      for (int64_t r = 0; r < h; r += 2) {
        const float* in0 = src + (r0 + r) * ld_src + c0;
        const float s0 = scale ? scale[r0 + r] : 1.0f;
        if (r + 1 < h) {
          const float* in1 = in0 + ld_src;
          const float s1 = scale ? scale[r0 + r + 1] : 1.0f;
          for (int64_t c = 0; c < w; ++c)
            tile[r / 2][c] = pair_bits(round_bf16(in0[c] * s0), round_bf16(in1[c] * s1));
        } else {
          for (int64_t c = 0; c < w; ++c) tile[r / 2][c] = pair_bits(round_bf16(in0[c] * s0), 0);
        }
      }
      for (int64_t c = 0; c < w; ++c) {
        bf16* out = dst + (c0 + c) * ld_dst + r0;
        for (int64_t r = 0; r + 1 < h; r += 2) std::memcpy(out + r, &tile[r / 2][c], 4);
        if (h & 1) out[h - 1] = static_cast<bf16>(tile[h / 2][c]);
      }
    }
  }
  if ((rows & 1) && ld_dst > rows)
    for (int64_t c = 0; c < cols; ++c) dst[c * ld_dst + rows] = 0;
}
void convert_transposed_bf16(bf16* dst, int64_t ld_dst, const float* src, int64_t ld_src,
                             int64_t rows, int64_t cols, const float* scale) {
  convert_transposed_bf16_simd(dst, ld_dst, src, ld_src, rows, cols, scale);
}

int64_t packed_b_bf16_elems(int64_t k, int64_t n) {
  return (n + kBf16Nr - 1) / kBf16Nr * ((k + 1) / 2) * 2 * kBf16Nr;
}

MBVR_DISPATCH
void pack_b_bf16_rows_simd(bf16* packed, const float* b, int64_t ldb, int64_t k, int64_t n,
                           int64_t p0, int64_t p1) {
  // A pair of rows of b at a time, read contiguously across every panel (each panel's
  // k-pair row is 128 contiguous bytes, written as 32-bit pairs: a vector loop).
  const int64_t panel_stride = packed_b_bf16_elems(k, kBf16Nr);
  for (int64_t p = p0; p < p1; p += 2) {
    const float* r0 = b + p * ldb;
    const float* r1 = p + 1 < k ? r0 + ldb : nullptr;  // odd k: the last row's partner is zero
    for (int64_t j0 = 0; j0 < n; j0 += kBf16Nr) {
      const int64_t w = std::min<int64_t>(kBf16Nr, n - j0);
      pair_word* dst = reinterpret_cast<pair_word*>(packed + (j0 / kBf16Nr) * panel_stride + p * kBf16Nr);
      if (r1)
        for (int64_t j = 0; j < w; ++j) dst[j] = pair_bits(round_bf16(r0[j0 + j]), round_bf16(r1[j0 + j]));
      else
        for (int64_t j = 0; j < w; ++j) dst[j] = pair_bits(round_bf16(r0[j0 + j]), 0);
      for (int64_t j = w; j < kBf16Nr; ++j) dst[j] = 0;
    }
  }
}
void pack_b_bf16_rows(bf16* packed, const float* b, int64_t ldb, int64_t k, int64_t n, int64_t p0,
                      int64_t p1) {
  pack_b_bf16_rows_simd(packed, b, ldb, k, n, p0, p1);
}

void pack_b_bf16(bf16* packed, const float* b, int64_t ldb, int64_t k, int64_t n) {
  pack_b_bf16_rows(packed, b, ldb, k, n, 0, k);
}

MBVR_DISPATCH
void pack_bt_bf16_simd(bf16* packed, const float* bt, int64_t ldbt, int64_t k, int64_t n) {
  // Each column of B is a contiguous row of bt, whose pairs land 2 * kBf16Nr elements
  // apart in the panel: kPackPairs pairs at a time.
  const int64_t pairs = (k + 1) / 2, full = k / 2;
  for (int64_t j0 = 0; j0 < n; j0 += kBf16Nr) {
    const int64_t w = std::min<int64_t>(kBf16Nr, n - j0);
    bf16* panel = packed + packed_b_bf16_elems(k, j0);
    for (int64_t t0 = 0; t0 < pairs; t0 += kPackPairs) {
      const int64_t t1 = std::min(pairs, t0 + kPackPairs), t1_full = std::min(full, t1);
      for (int64_t j = 0; j < w; ++j) {
        const float* col = bt + (j0 + j) * ldbt;
        bf16* dst = panel + 2 * j;
        for (int64_t t = t0; t < t1_full; ++t)
          put_pair(dst + t * 2 * kBf16Nr, round_bf16(col[2 * t]), round_bf16(col[2 * t + 1]));
        if (t1 > t1_full) put_pair(dst + full * 2 * kBf16Nr, round_bf16(col[2 * full]), 0);  // odd k
      }
      for (int64_t t = t0; t < t1; ++t)
        std::fill(panel + (t * kBf16Nr + w) * 2, panel + (t + 1) * kBf16Nr * 2, bf16{0});
    }
  }
}
void pack_bt_bf16(bf16* packed, const float* bt, int64_t ldbt, int64_t k, int64_t n) {
  pack_bt_bf16_simd(packed, bt, ldbt, k, n);
}

void gemm_bf16_packed(float* c, int64_t ldc, const bf16* a, int64_t lda, const bf16* packed_b,
                      int64_t m, int64_t n, int64_t k, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  const Bf16MicroKernel& uk = kernel();
  const int64_t panel_stride = packed_b_bf16_elems(k, kBf16Nr);
  for (int64_t p0 = 0; p0 < k; p0 += kKc) {
    const int64_t kc = std::min(kKc, k - p0);
    const bool acc = accumulate || p0 > 0;
    for (int64_t i0 = 0; i0 < m; i0 += kMc) {
      const int64_t mc = std::min(kMc, m - i0);
      for (int64_t j = 0; j < n; j += kBf16Nr) {
        const int cols = static_cast<int>(std::min<int64_t>(kBf16Nr, n - j));
        const bf16* panel = packed_b + (j / kBf16Nr) * panel_stride + p0 * kBf16Nr;
        for (int64_t i = i0; i < i0 + mc; i += uk.mr) {
          const int rows = static_cast<int>(std::min<int64_t>(uk.mr, i0 + mc - i));
          uk.run(kc, a + i * lda + p0, lda, panel, c + i * ldc + j, ldc, rows, cols, acc);
        }
      }
    }
  }
}

}  // namespace mbvr::cpu
