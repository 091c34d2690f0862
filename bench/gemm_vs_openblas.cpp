// Kernel harness for cpp/cpu/gemm.h: checks every microkernel this CPU can run against a
// float64 product (odd shapes, edge tiles, both A layouts), then times the three products
// of the loss at B = 4096, D = 512 (one strip of R = 256 queries against 1024 documents)
// against OpenBLAS sgemm of the same flops, single-threaded, in thread CPU time, best of N
// (so that other load on the machine disturbs the comparison as little as possible).
//
//   g++ -O2 -std=c++17 -Icpp bench/gemm_vs_openblas.cpp cpp/cpu/gemm.cpp \
//       cpp/cpu/gemm_avx512.cpp cpp/cpu/gemm_avx2.cpp -ldl -o /tmp/gemm_vs_openblas
//   MBVR_GEMM_KERNEL=avx512|avx2|portable /tmp/gemm_vs_openblas [reps]
//
// OpenBLAS is loaded at run time (libopenblas0-pthread); without it only ours is timed.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "cpu/gemm.h"

using namespace mbvr::cpu;

namespace {

using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                       float, float*, int);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// ---- validation -------------------------------------------------------------------

bool check(int64_t m, int64_t n, int64_t k, bool a_transposed, bool packed, bool accumulate) {
  std::mt19937 rng(static_cast<unsigned>(m * 131 + n * 7 + k));
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(m * k), b(k * n), c(m * n), ref(m * n);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  for (auto& x : c) x = u(rng);
  // A(i, p) = a[i * rs + p * cs]: row-major (m x k) or stored transposed (k x m).
  const int64_t rs = a_transposed ? 1 : k, cs = a_transposed ? m : 1;
  double worst = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = accumulate ? c[i * n + j] : 0.0;
      for (int64_t p = 0; p < k; ++p) s += static_cast<double>(a[i * rs + p * cs]) * b[p * n + j];
      ref[i * n + j] = static_cast<float>(s);
    }
  if (packed) {
    std::vector<float> pb(packed_b_floats(k, n));
    pack_b(pb.data(), b.data(), n, k, n);
    gemm_packed(c.data(), n, a.data(), rs, cs, pb.data(), m, n, k, accumulate);
  } else {
    gemm(c.data(), n, a.data(), rs, cs, b.data(), n, m, n, k, accumulate);
  }
  for (int64_t i = 0; i < m * n; ++i)
    worst = std::max(worst, std::fabs(c[i] - ref[i]) / (1.0 + std::fabs(ref[i])));
  const bool ok = worst < 1e-5 * std::sqrt(static_cast<double>(k) + 1);
  if (!ok)
    std::printf("  FAIL m=%ld n=%ld k=%ld transposed=%d packed=%d acc=%d: %.2e\n", long(m), long(n), long(k),
                a_transposed, packed, accumulate, worst);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
  std::printf("microkernel: %s\n", gemm_kernel_name());
  bool ok = true;
  for (int64_t m : {1, 5, 12, 13, 37, 300})
    for (int64_t n : {1, 16, 31, 32, 45, 100})
      for (int64_t k : {1, 7, 256, 300})
        for (int variant = 0; variant < 8; ++variant)
          ok &= check(m, n, k, variant & 1, variant & 2, variant & 4);
  std::printf("validation against float64: %s\n", ok ? "ok" : "FAILED");
  if (!ok) return 1;

  void* blas = dlopen("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0", RTLD_NOW);
  Sgemm sgemm = blas ? reinterpret_cast<Sgemm>(dlsym(blas, "cblas_sgemm")) : nullptr;
  if (blas) reinterpret_cast<void (*)(int)>(dlsym(blas, "openblas_set_num_threads"))(1);

  // The loss's shapes (loss.cpp): tiles are documents x queries with row stride R + 16.
  const int B = 1024, D = 512, R = 256, LD = R + 16, NB = 256;
  std::vector<float> x(B * D, 0.01f), q(R * D, 0.02f), tile(static_cast<size_t>(B) * LD, 0.001f);
  std::vector<float> dq(R * D), dx(B * D), c(static_cast<size_t>(B) * R), qt(D * R, 0.02f);
  std::vector<float> qt_packed(packed_b_floats(D, R)), q_packed(packed_b_floats(R, D));
  pack_b(qt_packed.data(), qt.data(), R, D, R);
  pack_b(q_packed.data(), q.data(), D, R, D);
  const double flops = 2.0 * B * R * D;
  double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
  for (int r = 0; r < reps; ++r) {
    double t[6];
    t[0] = cpu_seconds();
    for (int b = 0; b < B / NB; ++b)  // logits: z = X_block (broadcast) x Q^T (packed)
      gemm_packed(tile.data() + b * NB * LD, LD, x.data() + b * NB * D, D, 1, qt_packed.data(), NB, R, D, false);
    t[1] = cpu_seconds();
    for (int b = 0; b < B / NB; ++b)  // document gradients: dX_block += G^T_block Q
      gemm_packed(dx.data() + b * NB * D, D, tile.data() + b * NB * LD, LD, 1, q_packed.data(), NB, D, R, true);
    t[2] = cpu_seconds();
    gemm(dq.data(), D, tile.data(), 1, LD, x.data(), D, R, D, B, false);  // dQ = G X (B packed per chunk)
    t[3] = cpu_seconds();
    if (sgemm) {
      sgemm(kRowMajor, kNoTrans, kTrans, B, R, D, 1.0f, x.data(), D, q.data(), D, 0.0f, c.data(), R);
      t[4] = cpu_seconds();
      sgemm(kRowMajor, kTrans, kNoTrans, R, D, B, 1.0f, c.data(), R, x.data(), D, 0.0f, dq.data(), D);
      t[5] = cpu_seconds();
    } else {
      t[4] = t[5] = t[3];
    }
    for (int i = 0; i < 5; ++i) best[i] = std::min(best[i], t[i + 1] - t[i]);
  }
  std::printf("GFLOP/s, 1 thread, thread CPU time, best of %d:\n", reps);
  std::printf("  ours:     logits %.1f  dX %.1f  dQ %.1f\n", flops / best[0] / 1e9, flops / best[1] / 1e9,
              flops / best[2] / 1e9);
  if (sgemm)
    std::printf("  OpenBLAS: NT (as logits) %.1f  TN (as dQ) %.1f\n", flops / best[3] / 1e9, flops / best[4] / 1e9);
  return 0;
}
