#include "normalize.h"

#include <algorithm>
#include <cmath>

#include "../loss_math.h"
#include "thread_pool.h"

namespace mbvr::cpu {
namespace {
constexpr int64_t kRowsPerItem = 64;
int64_t items_for(int64_t rows) { return (rows + kRowsPerItem - 1) / kRowsPerItem; }

// Norms beyond which a raw operand is unsafe (normalize.h).
constexpr double kLargestRawNorm = 1e30, kSmallestRawNorm = 1e-30;
}  // namespace

void normalize_rows_forward(RowScales& out, const float* x, int64_t rows, int64_t dim,
                            bool normalize, int threads) {
  out.rows = x;
  out.copied = false;
  out.inv.assign(static_cast<size_t>(rows), 1.0f);
  out.norm.clear();
  if (!normalize) return;
  out.norm.resize(static_cast<size_t>(rows));
  std::vector<char> unsafe(static_cast<size_t>(items_for(rows)), 0);
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) {
      const float* xi = x + i * dim;
      double ss = 0;
      for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(xi[d]) * xi[d];
      out.norm[i] = std::sqrt(ss);
      out.inv[i] = static_cast<float>(1.0 / std::max(out.norm[i], math::kNormEps));
      if (out.norm[i] > kLargestRawNorm || (out.norm[i] > 0 && out.norm[i] < kSmallestRawNorm)) unsafe[item] = 1;
    }
  });
  if (std::find(unsafe.begin(), unsafe.end(), 1) == unsafe.end()) return;
  out.copy.resize(static_cast<size_t>(rows * dim));
  float* hat = out.copy.data();
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) normalize_row(hat + i * dim, x + i * dim, dim);
  });
  std::fill(out.inv.begin(), out.inv.end(), 1.0f);
  out.rows = hat;
  out.copied = true;
}

void normalize_row(float* hat, const float* x, int64_t dim) {
  double ss = 0;
  for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(x[d]) * x[d];
  const double inv = 1.0 / std::max(std::sqrt(ss), math::kNormEps);
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
                             int64_t dim, double scale, bool against_operand, int threads) {
  if (!dx) return;
  parallel_for(threads, items_for(rows), [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t i = item * kRowsPerItem; i < end; ++i) {
      float* g = dx + i * dim;
      if (!s.normalized()) {  // x^ = x: the factor is 1 and v = dL/dx^ / scale either way
        for (int64_t d = 0; d < dim; ++d) g[d] = static_cast<float>(g[d] * scale);
        continue;
      }
      const double divisor = std::max(s.norm[i], math::kNormEps);  // max(||x||, eps)
      // v = dL/dx^ / scale, whichever form came in (a copy's factor is 1).
      const double to_v = against_operand && !s.copied ? divisor : 1.0;
      const double f = math::normalize_backward_factor(s.norm[i], scale);
      if (!math::normalize_backward_projects(s.norm[i])) {  // the divisor is the constant eps
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
        g[d] = static_cast<float>(math::normalize_backward<double>(g[d] * to_v, h, proj, f));
      }
    }
  });
}

}  // namespace mbvr::cpu
