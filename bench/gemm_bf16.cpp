// Harness for cpp/cpu/gemm_bf16.h. Validation: the bf16 rounding, both conversions, both
// packings and the product (odd shapes, edge tiles, accumulate, several k-chunks) against
// float64 sums of the bf16-rounded inputs (only fp32 accumulation error remains), the
// bit-equality of C whatever block of it a caller asks for, and that nothing outside the
// operands is touched; then the same with MBVR_GEMM_KERNEL=portable (a re-run of itself).
// Timing: the three products of the loss at B = 4096, D = 512, one strip of R = 512, each
// against the fp32 gemm_packed on the same shape, single-threaded, in thread CPU time,
// best of N; and the conversions that feed them.
//
//   g++ -O3 -std=c++17 -Icpp -o /tmp/gemm_bf16 bench/gemm_bf16.cpp cpp/cpu/gemm_bf16.cpp
//       cpp/cpu/gemm_bf16_avx512.cpp cpp/cpu/gemm.cpp cpp/cpu/gemm_avx512.cpp cpp/cpu/gemm_avx2.cpp
//   /tmp/gemm_bf16 [reps] [small]   (reps = 0: validation only; small: fewer shapes, for
//                                    a -fsanitize=address,undefined build)
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/gemm_bf16.h"
#include "cpu/gemm_kernels.h"

using namespace mbvr::cpu;

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

std::vector<float> random_floats(size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(count);
  for (auto& x : v) x = u(rng);
  return v;
}

// ---- rounding ---------------------------------------------------------------------

// The reference: of the two bf16 values around x, the nearer in exact (double)
// arithmetic; on a tie, the one with an even last bit; a finite x that would round to
// inf saturates to the largest finite bf16 instead.
bool check_rounding() {
  auto reference = [](float x) -> uint32_t {
    if (std::isnan(x)) return 0x7FC0;  // any NaN will do; compared as "is NaN" below
    const uint32_t down = bits(x) >> 16;
    const double lo = from_bf16(static_cast<bf16>(down));
    // The next bf16 away from zero; past the largest finite one it is inf, and a value
    // exactly halfway to 2^128 (the next power) rounds to inf too.
    const double hi = down == 0x7F7F || down == 0xFF7F ? std::copysign(std::ldexp(1.0, 128), lo)
                                                       : from_bf16(static_cast<bf16>(down + 1));
    const double dl = std::fabs(x - lo), dh = std::fabs(hi - x);
    const uint32_t up = down + 1;
    if (std::isinf(x)) return down;
    const uint32_t nearest = dl < dh || (dl == dh && (down & 1) == 0) ? down : up;
    return (nearest & 0x7FFF) == 0x7F80 ? (nearest & 0x8000) | 0x7F7F : nearest;
  };
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, 1.00390625f /* 1 + 2^-8: tie, stays 1 */,
                           1.01171875f /* 1 + 3 * 2^-8: tie, rounds up */,
                           std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                           from_bits(0x7F7F8000) /* halfway to inf: saturates */, from_bits(0x7F7F7FFF),
                           std::numeric_limits<float>::quiet_NaN(), from_bits(0x7F800001) /* sNaN,
                           payload only in the dropped half */, from_bits(0xFFFFFFFF)};
  std::mt19937 rng(1);
  for (int i = 0; i < 1000000; ++i) xs.push_back(from_bits(rng()));
  int bad = 0;
  for (float x : xs) {
    const bf16 got = to_bf16(x);
    const bool ok = std::isnan(x) ? std::isnan(from_bf16(got)) : got == reference(x);
    if (!ok && ++bad <= 5) std::printf("  FAIL to_bf16(%a) = %04x\n", x, got);
  }
  return bad == 0;
}

// ---- conversions ------------------------------------------------------------------

bool check_convert(int64_t rows, int64_t cols, bool scaled, bool transposed) {
  const int64_t ld_src = cols + 3;
  const std::vector<float> src = random_floats(rows * ld_src, unsigned(rows * 7 + cols));
  std::vector<float> scale = random_floats(rows, 3);
  const float* s = scaled ? scale.data() : nullptr;
  const int64_t drows = transposed ? cols : rows, dcols = transposed ? rows : cols;
  const int64_t ld_dst = dcols + 2;
  std::vector<bf16> dst(drows * ld_dst, 0xABCD);
  if (transposed)
    convert_transposed_bf16(dst.data(), ld_dst, src.data(), ld_src, rows, cols, s);
  else
    convert_rows_bf16(dst.data(), ld_dst, src.data(), ld_src, rows, cols, s);
  int bad = 0;
  for (int64_t r = 0; r < drows; ++r)
    for (int64_t c = 0; c < ld_dst; ++c) {
      const int64_t sr = transposed ? c : r, sc = transposed ? r : c;  // source row, column
      bf16 want = 0xABCD;                                                  // untouched
      if (c < dcols) want = to_bf16(src[sr * ld_src + sc] * (s ? s[sr] : 1.0f));
      else if (c == dcols && (dcols & 1)) want = 0;                        // the pair's pad
      bad += dst[r * ld_dst + c] != want;
    }
  if (bad)
    std::printf("  FAIL convert rows=%ld cols=%ld scaled=%d transposed=%d: %d wrong\n", long(rows),
                long(cols), scaled, transposed, bad);
  return bad == 0;
}

// ---- products ---------------------------------------------------------------------

struct Problem {
  int64_t m, n, k, lda, ldc;
  std::vector<float> a, b, c0;  // fp32 sources: A (m x lda), B (k x n), C's initial values
  std::vector<bf16> a16;        // A in bf16, row stride lda (pad: NaN)
  std::vector<bf16> packed;     // B packed by pack_b_bf16
};

Problem make_problem(int64_t m, int64_t n, int64_t k, int64_t lda) {
  Problem p{m, n, k, lda, n + 5, {}, {}, {}, {}, {}};
  p.a = random_floats(m * lda, unsigned(m * 131 + n * 7 + k));
  p.b = random_floats(k * n, unsigned(m + n * 17 + k * 3));
  p.c0 = random_floats(m * p.ldc, 5);
  // A sized exactly m x lda: with lda == k, a read past A(m - 1, k - 1) leaves the
  // allocation (AddressSanitizer); with lda > k, a read of the pad gives NaN in C.
  p.a16.assign(m * lda, 0x7FC0);
  convert_rows_bf16(p.a16.data(), lda, p.a.data(), lda, m, k, nullptr);
  for (int64_t i = 0; i < m && (k & 1) && lda > k; ++i) p.a16[i * lda + k] = 0x7FC0;  // undo the 0 pad
  p.packed.resize(packed_b_bf16_elems(k, n));
  pack_b_bf16(p.packed.data(), p.b.data(), n, k, n);
  return p;
}

bool check_product(int64_t m, int64_t n, int64_t k, bool tight, bool transposed_b, bool accumulate) {
  Problem p = make_problem(m, n, k, tight ? k : k + 3);
  if (transposed_b) {  // the same B from its transpose: the packing must agree bit for bit
    std::vector<float> bt(n * (k + 1));
    for (int64_t p0 = 0; p0 < k; ++p0)
      for (int64_t j = 0; j < n; ++j) bt[j * (k + 1) + p0] = p.b[p0 * n + j];
    std::vector<bf16> packed(packed_b_bf16_elems(k, n));
    pack_bt_bf16(packed.data(), bt.data(), k + 1, k, n);
    if (packed != p.packed) {
      std::printf("  FAIL pack_bt_bf16 != pack_b_bf16 (k=%ld n=%ld)\n", long(k), long(n));
      return false;
    }
  }
  std::vector<float> c = p.c0;
  gemm_bf16_packed(c.data(), p.ldc, p.a16.data(), p.lda, p.packed.data(), m, n, k, accumulate);
  double worst = 0;
  int outside = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < p.ldc; ++j) {
      const float got = c[i * p.ldc + j];
      if (j >= n) {  // beyond column n - 1: untouched
        outside += bits(got) != bits(p.c0[i * p.ldc + j]);
        continue;
      }
      double s = accumulate ? p.c0[i * p.ldc + j] : 0.0;
      for (int64_t q = 0; q < k; ++q)
        s += double(from_bf16(to_bf16(p.a[i * p.lda + q]))) * from_bf16(to_bf16(p.b[q * n + j]));
      const double err = std::fabs(got - s) / (1.0 + std::fabs(s));
      worst = std::isnan(err) ? 1e30 : std::max(worst, err);
    }
  const bool ok = worst < 1e-5 * std::sqrt(double(k) + 1) && outside == 0;
  if (!ok)
    std::printf("  FAIL m=%ld n=%ld k=%ld tight=%d bt=%d acc=%d: error %.2e, %d outside\n", long(m),
                long(n), long(k), tight, transposed_b, accumulate, worst, outside);
  return ok;
}

// C computed in blocks must be bit-identical to C computed whole: rows split anywhere,
// columns split at panels (offset into one packing) or anywhere (a packing of the block).
bool check_blocks(int64_t m, int64_t n, int64_t k) {
  Problem p = make_problem(m, n, k, k);
  std::vector<float> whole = p.c0, rows = p.c0, panels = p.c0, cols = p.c0;
  gemm_bf16_packed(whole.data(), p.ldc, p.a16.data(), k, p.packed.data(), m, n, k, true);
  for (int64_t i0 = 0, step = 1; i0 < m; i0 += step, step = step * 3 + 2) {
    const int64_t mb = std::min(step, m - i0);
    gemm_bf16_packed(rows.data() + i0 * p.ldc, p.ldc, p.a16.data() + i0 * k, k, p.packed.data(), mb,
                     n, k, true);
  }
  for (int64_t j0 = 0; j0 < n; j0 += kBf16Nr)
    gemm_bf16_packed(panels.data() + j0, p.ldc, p.a16.data(), k, p.packed.data() + packed_b_bf16_elems(k, j0),
                     m, std::min<int64_t>(kBf16Nr, n - j0), k, true);
  for (int64_t j0 = 0, step = 5; j0 < n; j0 += step, step += 19) {
    const int64_t nb = std::min(step, n - j0);
    std::vector<bf16> packed(packed_b_bf16_elems(k, nb));
    pack_b_bf16(packed.data(), p.b.data() + j0, n, k, nb);
    gemm_bf16_packed(cols.data() + j0, p.ldc, p.a16.data(), k, packed.data(), m, nb, k, true);
  }
  auto same = [&](const std::vector<float>& x) { return std::memcmp(x.data(), whole.data(), x.size() * 4) == 0; };
  const bool ok = same(rows) && same(panels) && same(cols);
  if (!ok)
    std::printf("  FAIL blocks m=%ld n=%ld k=%ld: rows %d panels %d cols %d\n", long(m), long(n), long(k),
                same(rows), same(panels), same(cols));
  return ok;
}

// How often the two kernels differ (not required to agree; reported for information).
void compare_kernels(int64_t k) {
  const Bf16MicroKernel native = microkernel_bf16_avx512(), portable = microkernel_bf16_portable();
  if (!native.run || !bf16_kernel_native()) return;
  Problem p = make_problem(12, kBf16Nr, k, k);
  std::vector<float> c1(12 * kBf16Nr), c2(12 * kBf16Nr);
  native.run(k, p.a16.data(), k, p.packed.data(), c1.data(), kBf16Nr, 12, kBf16Nr, false);
  for (int i = 0; i < 12; i += portable.mr)
    portable.run(k, p.a16.data() + i * k, k, p.packed.data(), c2.data() + i * kBf16Nr, kBf16Nr,
                 std::min(portable.mr, 12 - i), kBf16Nr, false);
  int differ = 0;
  for (size_t i = 0; i < c1.size(); ++i) differ += bits(c1[i]) != bits(c2[i]);
  std::printf("native vs portable kernel, 12 x 32 x %ld: %d of %zu elements differ in some bit\n",
              long(k), differ, c1.size());
}

bool validate(bool small) {
  bool ok = check_rounding();
  for (int64_t rows : {1, 2, 7, 64, 65, 130})
    for (int64_t cols : {1, 2, 7, 64, 65, 130})
      for (int v = 0; v < 4; ++v) ok &= check_convert(rows, cols, v & 1, v & 2);
  const std::vector<int64_t> ms = small ? std::vector<int64_t>{1, 5, 12, 13, 37} : std::vector<int64_t>{1, 5, 12, 13, 37, 300};
  for (int64_t m : ms)
    for (int64_t n : {1, 16, 31, 32, 45, 100})
      for (int64_t k : {1, 2, 7, 256, 301})
        for (int v = 0; v < 8; ++v) ok &= check_product(m, n, k, v & 1, v & 2, v & 4);
  ok &= check_product(29, 70, 2501, true, false, true);  // several k-chunks, odd tail
  ok &= check_blocks(53, 100, 301);
  ok &= check_blocks(40, 77, small ? 1101 : 2501);
  return ok;
}

// ---- timing -----------------------------------------------------------------------

struct Shape {
  const char* name;
  int64_t m, n, k;
  bool accumulate;
  int64_t lda_pad;  // A's row stride is k + lda_pad (bf16) / k (fp32)
};

void time_shape(const Shape& s, int reps) {
  const std::vector<float> a = random_floats(s.m * s.k, 11), b = random_floats(s.k * s.n, 12);
  const int64_t lda = s.k + s.lda_pad;
  std::vector<bf16> a16(s.m * lda), b16(packed_b_bf16_elems(s.k, s.n));
  convert_rows_bf16(a16.data(), lda, a.data(), s.k, s.m, s.k, nullptr);
  pack_b_bf16(b16.data(), b.data(), s.n, s.k, s.n);
  std::vector<float> b32(packed_b_floats(s.k, s.n)), c(s.m * s.n, 0.0f);
  pack_b(b32.data(), b.data(), s.n, s.k, s.n);
  double best16 = 1e9, best32 = 1e9;
  for (int r = 0; r < reps; ++r) {
    const double t0 = cpu_seconds();
    gemm_bf16_packed(c.data(), s.n, a16.data(), lda, b16.data(), s.m, s.n, s.k, s.accumulate);
    const double t1 = cpu_seconds();
    gemm_packed(c.data(), s.n, a.data(), s.k, 1, b32.data(), s.m, s.n, s.k, s.accumulate);
    const double t2 = cpu_seconds();
    best16 = std::min(best16, t1 - t0);
    best32 = std::min(best32, t2 - t1);
  }
  const double flops = 2.0 * s.m * s.n * s.k;
  std::printf("  %-8s C(%ld x %ld) %s A(%ld x %ld, lda %ld) B:  bf16 %6.1f   fp32 %6.1f GFLOP/s  (x%.2f)\n",
              s.name, long(s.m), long(s.n), s.accumulate ? "+=" : "= ", long(s.m), long(s.k), long(lda),
              flops / best16 / 1e9, flops / best32 / 1e9, best32 / best16);
}

// The conversions of one 4096 x 512 operand, in ms (they come on top of the products).
void time_conversions(int reps) {
  const int64_t rows = 4096, cols = 512;
  const std::vector<float> x = random_floats(rows * cols, 13), scale = random_floats(rows, 14);
  std::vector<bf16> out(std::max(packed_b_bf16_elems(rows, cols), rows * cols));
  double best[4] = {1e9, 1e9, 1e9, 1e9};
  for (int r = 0; r < reps; ++r) {
    double t[5];
    t[0] = cpu_seconds();
    convert_rows_bf16(out.data(), cols, x.data(), cols, rows, cols, scale.data());
    t[1] = cpu_seconds();
    convert_transposed_bf16(out.data(), rows, x.data(), cols, rows, cols, scale.data());
    t[2] = cpu_seconds();
    pack_b_bf16(out.data(), x.data(), cols, rows, cols);  // B = X (k = 4096)
    t[3] = cpu_seconds();
    pack_bt_bf16(out.data(), x.data(), cols, cols, rows);  // B = X^T (k = 512)
    t[4] = cpu_seconds();
    for (int i = 0; i < 4; ++i) best[i] = std::min(best[i], t[i + 1] - t[i]);
  }
  std::printf("  4096 x 512 fp32 -> bf16, ms: rows %.2f  transposed %.2f  pack_b %.2f  pack_bt %.2f\n",
              best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 20;
  const bool small = argc > 2 && std::strcmp(argv[2], "small") == 0;  // shorter, for sanitizers
  std::printf("bf16 kernel: %s (fp32: %s)\n", gemm_bf16_kernel_name(), gemm_kernel_name());
  const bool ok = validate(small);
  std::printf("validation against float64: %s\n", ok ? "ok" : "FAILED");
  if (!ok) return 1;
  compare_kernels(301);
  compare_kernels(4096);

  if (bf16_kernel_native()) {  // the portable kernel too, in a child told to use it
    std::fflush(stdout);
    const std::string cmd = "MBVR_GEMM_KERNEL=portable /proc/" + std::to_string(getpid()) + "/exe 0" +
                            (small ? " small" : "");
    if (std::system(cmd.c_str()) != 0) return 1;
  }
  if (reps <= 0) return 0;

  // One strip of R = 512 queries at B = 4096, D = 512 (loss.cpp's products, in bf16).
  std::printf("GFLOP/s, 1 thread, thread CPU time, best of %d:\n", reps);
  time_shape({"logits", 256, 512, 512, false, 0}, reps);
  time_shape({"dX", 256, 512, 512, true, 0}, reps);
  time_shape({"dQ^T", 512, 512, 4096, false, 0}, reps);
  // A row stride of 8 KiB puts the 12 rows a tile reads in one L1 set; 64 bytes more
  // spreads them (the fp32 line keeps lda = k).
  time_shape({"dQ^T", 512, 512, 4096, false, 32}, reps);
  time_conversions(reps);
  return 0;
}
