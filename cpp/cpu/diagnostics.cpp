// modality_cosines() and score_cosines() on the CPU: per-row cosines for the
// diagnostics of ../evaluation.h. O(B K D) work, so plain float64 loops, parallel over
// rows (each row's result depends on that row alone).
#include <algorithm>
#include <cmath>

#include "../loss_math.h"
#include "evaluation.h"
#include "normalize.h"
#include "thread_pool.h"

namespace mbvr::cpu {
namespace {

constexpr int64_t kRowsPerItem = 64;

// a.b / (max(||a||, eps) * max(||b||, eps)), accumulated in float64 in index order.
double cosine(const float* a, const float* b, int64_t dim) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t d = 0; d < dim; ++d) {
    ab += static_cast<double>(a[d]) * b[d];
    aa += static_cast<double>(a[d]) * a[d];
    bb += static_cast<double>(b[d]) * b[d];
  }
  return ab / (std::max(std::sqrt(aa), math::kNormEps) * std::max(std::sqrt(bb), math::kNormEps));
}

template <class Row>
void for_rows(int threads, int64_t rows, Row row) {
  parallel_for(threads, (rows + kRowsPerItem - 1) / kRowsPerItem, [&](int64_t item, int) {
    for (int64_t i = item * kRowsPerItem; i < std::min(rows, (item + 1) * kRowsPerItem); ++i) row(i);
  });
}

}  // namespace

void modality_cosines(double* cos_visual, double* cos_text, const ModalityBalanceParams& p) {
  for_rows(resolve_threads(p.threads), p.batch, [&](int64_t i) {
    const float* m = p.fused + i * p.dim;
    cos_visual[i] = cosine(p.visual + i * p.dim, m, p.dim);
    cos_text[i] = cosine(p.text + i * p.dim, m, p.dim);
  });
}

void score_cosines(float* positive, float* shuffled, const ScoreSeparationParams& p) {
  for_rows(resolve_threads(p.threads), p.batch, [&](int64_t i) {
    const float* q = p.query + i * p.dim;
    positive[i] = static_cast<float>(cosine(q, p.fused + i * p.dim, p.dim));
    for (int64_t k = 0; k < p.k; ++k)
      shuffled[i * p.k + k] = static_cast<float>(cosine(q, p.shuffled + (i * p.k + k) * p.dim, p.dim));
  });
}

}  // namespace mbvr::cpu
