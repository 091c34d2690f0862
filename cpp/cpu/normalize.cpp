#include "normalize.h"

#include <algorithm>
#include <cmath>

#include "thread_pool.h"

namespace mbvr::cpu {
namespace {
constexpr int64_t kRowsPerItem = 64;
int64_t items_for(int64_t rows) { return (rows + kRowsPerItem - 1) / kRowsPerItem; }
}  // namespace

void normalize_rows_forward(NormalizedRows& out, const float* x, int64_t rows, int64_t dim,
                            bool normalize, int threads) {
  if (!normalize) {
    out.hat = x;
    return;
  }
  out.store.resize(static_cast<size_t>(rows * dim));
  out.norm.resize(static_cast<size_t>(rows));
  float* hat = out.store.data();
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) {
      const float* xi = x + i * dim;
      double ss = 0;
      for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(xi[d]) * xi[d];
      const double norm = std::sqrt(ss);
      out.norm[i] = norm;
      const double inv = 1.0 / std::max(norm, kNormEps);
      for (int64_t d = 0; d < dim; ++d) hat[i * dim + d] = static_cast<float>(xi[d] * inv);
    }
  });
  out.hat = hat;
}

void normalize_rows_backward(float* dx, const NormalizedRows& x, int64_t rows, int64_t dim,
                             double scale, int threads) {
  if (!dx) return;
  const bool normalized = !x.norm.empty();
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) {
      float* g = dx + i * dim;
      if (!normalized || x.norm[i] < kNormEps) {
        const double f = normalized ? scale / kNormEps : scale;
        for (int64_t d = 0; d < dim; ++d) g[d] = static_cast<float>(g[d] * f);
        continue;
      }
      const float* h = x.hat + i * dim;
      double proj = 0;
      for (int64_t d = 0; d < dim; ++d) proj += static_cast<double>(h[d]) * g[d];
      const double f = scale / x.norm[i];
      for (int64_t d = 0; d < dim; ++d) g[d] = static_cast<float>((g[d] - h[d] * proj) * f);
    }
  });
}

}  // namespace mbvr::cpu
