#include "normalize.h"

#include <algorithm>
#include <cmath>

#include "thread_pool.h"

namespace mbvr::cpu {
namespace {
constexpr int64_t kRowsPerItem = 64;
int64_t items_for(int64_t rows) { return (rows + kRowsPerItem - 1) / kRowsPerItem; }
}  // namespace

void normalize_rows_forward(RowScales& out, const float* x, int64_t rows, int64_t dim,
                            bool normalize, int threads) {
  out.inv.assign(static_cast<size_t>(rows), 1.0f);
  out.norm.clear();
  if (!normalize) return;
  out.norm.resize(static_cast<size_t>(rows));
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) {
      const float* xi = x + i * dim;
      double ss = 0;
      for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(xi[d]) * xi[d];
      out.norm[i] = std::sqrt(ss);
      out.inv[i] = static_cast<float>(1.0 / std::max(out.norm[i], kNormEps));
    }
  });
}

void normalize_row(float* hat, const float* x, int64_t dim) {
  double ss = 0;
  for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(x[d]) * x[d];
  const double inv = 1.0 / std::max(std::sqrt(ss), kNormEps);
  for (int64_t d = 0; d < dim; ++d) hat[d] = static_cast<float>(x[d] * inv);
}

void normalize_rows_forward(NormalizedRows& out, const float* x, int64_t rows, int64_t dim,
                            bool normalize, int threads) {
  if (!normalize) {
    out.hat = x;
    return;
  }
  out.store.resize(static_cast<size_t>(rows * dim));
  float* hat = out.store.data();
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) normalize_row(hat + i * dim, x + i * dim, dim);
  });
  out.hat = hat;
}

void normalize_rows_backward(float* dx, const float* x, const RowScales& s, int64_t rows,
                             int64_t dim, double scale, bool prescaled, int threads) {
  if (!dx) return;
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) {
      float* g = dx + i * dim;
      if (!s.normalized()) {  // x^ = x: inv is 1 and u = dL/dx^ / scale either way
        for (int64_t d = 0; d < dim; ++d) g[d] = static_cast<float>(g[d] * scale);
        continue;
      }
      const double divisor = std::max(s.norm[i], kNormEps);  // max(||x||, eps) = 1 / inv
      // v = dL/dx^ / scale, whichever form came in.
      const double to_v = prescaled ? divisor : 1.0;
      const double f = scale / divisor;
      if (s.norm[i] < kNormEps) {  // the divisor is the constant eps: no projection
        for (int64_t d = 0; d < dim; ++d) g[d] = static_cast<float>(g[d] * to_v * f);
        continue;
      }
      // x^ rounded to float as a normalised copy would be: a one-hot row is then exactly
      // +-1 and its projection cancels exactly, as in float64.
      const float* xi = x + i * dim;
      const double inv = 1.0 / divisor;
      double proj = 0;  // x^ . v
      for (int64_t d = 0; d < dim; ++d)
        proj += static_cast<double>(static_cast<float>(xi[d] * inv)) * (g[d] * to_v);
      for (int64_t d = 0; d < dim; ++d) {
        const double h = static_cast<float>(xi[d] * inv);
        g[d] = static_cast<float>((g[d] * to_v - h * proj) * f);
      }
    }
  });
}

}  // namespace mbvr::cpu
