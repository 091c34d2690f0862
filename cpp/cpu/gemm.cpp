#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gemm_kernels.h"

namespace mbvr::cpu {
namespace {

// ---- the portable microkernel: plain C++, for CPUs (or compilers) without the above --

constexpr int kPortableMr = 4;
constexpr int kPortableNr = 16;

void portable_run(int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                  int64_t ldb, float* c, int64_t ldc, int rows, int cols, bool accumulate) {
  float acc[kPortableMr][kPortableNr];
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < kPortableNr; ++j) acc[i][j] = accumulate && j < cols ? c[i * ldc + j] : 0.0f;
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    for (int i = 0; i < rows; ++i) {
      const float ai = a[i * a_rs + p * a_cs];
      for (int j = 0; j < cols; ++j) acc[i][j] += ai * bp[j];
    }
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) c[i * ldc + j] = acc[i][j];
}

// ---- dispatch -------------------------------------------------------------------

// The best kernel this CPU runs. MBVR_GEMM_KERNEL=avx2|portable asks for a lesser one
// (to test every kernel on one machine); a request the CPU cannot run is ignored.
MicroKernel select_kernel() {
  const char* want = std::getenv("MBVR_GEMM_KERNEL");
  const bool allow_avx512 = !want || std::strcmp(want, "avx512") == 0;
  const bool allow_avx2 = allow_avx512 || std::strcmp(want, "avx2") == 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (allow_avx512 && __builtin_cpu_supports("avx512f")) {
    MicroKernel k = microkernel_avx512();
    if (k.run) return k;
  }
  if (allow_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    MicroKernel k = microkernel_avx2();
    if (k.run) return k;
  }
#else
  (void)allow_avx2;
#endif
  return microkernel_portable();
}

const MicroKernel& kernel() {
  static const MicroKernel selected = select_kernel();
  return selected;
}

// Steps of p per pass over C: a 12-row A sliver (24 KiB) and a 32-column B sliver
// (64 KiB) stay within L1/L2 reach; 512 also covers D = 512 in one pass (no C reload),
// measured a few percent faster than 256. Storing C between passes is exact, so the
// chunking never changes a result.
constexpr int64_t kKc = 512;
// Rows of A per block: the block (kMc x kKc floats, 528 KiB) stays in L2 while every
// column sliver of B passes over it.
constexpr int64_t kMc = 264;  // a multiple of 12, 6 and 4

}  // namespace

MicroKernel microkernel_portable() { return {"portable 4x16", kPortableMr, kPortableNr, &portable_run}; }

const char* gemm_kernel_name() { return kernel().name; }

int64_t packed_b_floats(int64_t k, int64_t n) {
  const int64_t nr = kernel().nr;
  return (n + nr - 1) / nr * nr * k;
}

namespace {

// k rows of NR contiguous floats: a fixed-size copy the compiler turns into vector moves.
template <int NR>
void copy_panel_rows(float* panel, const float* b, int64_t ldb, int64_t k) {
  for (int64_t p = 0; p < k; ++p) std::memcpy(panel + p * NR, b + p * ldb, NR * sizeof(float));
}

}  // namespace

void pack_b(float* packed, const float* b, int64_t ldb, int64_t k, int64_t n, const float* row_scale) {
  const int64_t nr = kernel().nr;
  for (int64_t j0 = 0; j0 < n; j0 += nr) {
    const int64_t w = std::min(nr, n - j0);
    float* panel = packed + j0 * k;  // panel j0 / nr starts at (j0 / nr) * k * nr
    if (w == nr && !row_scale && (nr == 32 || nr == 16)) {  // a whole panel: vector moves
      if (nr == 32)
        copy_panel_rows<32>(panel, b + j0, ldb, k);
      else
        copy_panel_rows<16>(panel, b + j0, ldb, k);
      continue;
    }
    for (int64_t p = 0; p < k; ++p) {
      const float* src = b + p * ldb + j0;
      const float s = row_scale ? row_scale[p] : 1.0f;
      float* dst = panel + p * nr;
      for (int64_t j = 0; j < w; ++j) dst[j] = row_scale ? src[j] * s : src[j];
      for (int64_t j = w; j < nr; ++j) dst[j] = 0.0f;
    }
  }
}

void pack_bt(float* packed, const float* bt, int64_t ldbt, int64_t k, int64_t n, const float* col_scale) {
  const int64_t nr = kernel().nr;
  for (int64_t j0 = 0; j0 < n; j0 += nr) {
    const int64_t w = std::min(nr, n - j0);
    float* panel = packed + j0 * k;
    // Column j of B is row j of bt: read it contiguously, write it down the panel.
    for (int64_t j = 0; j < w; ++j) {
      const float* src = bt + (j0 + j) * ldbt;
      const float s = col_scale ? col_scale[j0 + j] : 1.0f;
      for (int64_t p = 0; p < k; ++p) panel[p * nr + j] = col_scale ? src[p] * s : src[p];
    }
    for (int64_t j = w; j < nr; ++j)
      for (int64_t p = 0; p < k; ++p) panel[p * nr + j] = 0.0f;
  }
}

namespace {

// The loops over one k-chunk: B panels (kc x nr, row stride nr, panel stride
// panel_stride) against every row block of A.
void chunk(const MicroKernel& uk, float* c, int64_t ldc, const float* a, int64_t a_rs,
           int64_t a_cs, const float* panels, int64_t panel_stride, int64_t m, int64_t n,
           int64_t kc, bool acc) {
  for (int64_t i0 = 0; i0 < m; i0 += kMc) {
    const int64_t mc = std::min(kMc, m - i0);
    for (int64_t j = 0; j < n; j += uk.nr) {
      const int cols = static_cast<int>(std::min<int64_t>(uk.nr, n - j));
      const float* panel = panels + (j / uk.nr) * panel_stride;
      for (int64_t i = i0; i < i0 + mc; i += uk.mr) {
        const int rows = static_cast<int>(std::min<int64_t>(uk.mr, i0 + mc - i));
        uk.run(kc, a + i * a_rs, a_rs, a_cs, panel, uk.nr, c + i * ldc + j, ldc, rows, cols, acc);
      }
    }
  }
}

void zero_rows(float* c, int64_t ldc, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
}

}  // namespace

void gemm_packed(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs,
                 const float* packed_b, int64_t m, int64_t n, int64_t k, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) zero_rows(c, ldc, m, n);
    return;
  }
  const MicroKernel& uk = kernel();
  for (int64_t p0 = 0; p0 < k; p0 += kKc)
    chunk(uk, c, ldc, a + p0 * a_cs, a_rs, a_cs, packed_b + p0 * uk.nr, k * uk.nr, m, n,
          std::min(kKc, k - p0), accumulate || p0 > 0);
}

void gemm(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
          int64_t ldb, int64_t m, int64_t n, int64_t k, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) zero_rows(c, ldc, m, n);
    return;
  }
  const MicroKernel& uk = kernel();
  // One k-chunk of B at a time, kNc columns at a time, packed into this thread's buffer.
  constexpr int64_t kNc = 512;
  thread_local std::vector<float> buffer;  // kept between calls; sized to what this call packs
  const size_t need = static_cast<size_t>(std::min(kKc, k) * packed_b_floats(1, std::min(kNc, n)));
  if (buffer.size() < need) buffer.resize(need);
  for (int64_t p0 = 0; p0 < k; p0 += kKc) {
    const int64_t kc = std::min(kKc, k - p0);
    for (int64_t j0 = 0; j0 < n; j0 += kNc) {
      const int64_t nc = std::min(kNc, n - j0);
      pack_b(buffer.data(), b + p0 * ldb + j0, ldb, kc, nc);
      chunk(uk, c + j0, ldc, a + p0 * a_cs, a_rs, a_cs, buffer.data(), kc * uk.nr, m, nc, kc,
            accumulate || p0 > 0);
    }
  }
}

}  // namespace mbvr::cpu
