// The evaluation entry points: the memory-safety checks (validation.h; the user-facing
// checks are src/evaluation.ts's), the choice of backend (the CPU for now), and the
// summaries every backend shares.
#include "evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "cpu/evaluation.h"
#include "cpu/thread_pool.h"
#include "validation.h"

namespace mbvr {
namespace {

// Shared by top_k and retrieval_metrics.
void check_retrieval_sizes(const float* queries, const float* gallery, int64_t rows, int64_t cols, int64_t dim) {
  require_positive_size(rows, "rows");
  require_positive_size(cols, "cols");
  require_positive_size(dim, "dim");
  if (cols > std::numeric_limits<int32_t>::max())
    throw bad_argument(ErrorKind::Range, "cols", "at most 2147483647 (Int32Array indices)");
  require_size_product(std::max(rows, cols), dim, 1, "rows * dim");
  require_input(queries, "queries");
  require_input(gallery, "gallery");
}

// P(q) of sorted values by linear interpolation between closest ranks.
double percentile(const std::vector<double>& sorted, double q) {
  const double h = static_cast<double>(sorted.size() - 1) * q;
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted[lo];
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

}  // namespace

Summary summarize(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }), values.end());
  Summary s;
  s.count = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  double sum = 0;
  for (double v : values) sum += v;  // index order
  s.mean = sum / static_cast<double>(values.size());
  std::sort(values.begin(), values.end());
  s.median = percentile(values, 0.5);
  s.p10 = percentile(values, 0.1);
  s.p90 = percentile(values, 0.9);
  return s;
}

void modality_balance(ModalityBalanceOutputs& out, const ModalityBalanceParams& p) {
  require_positive_size(p.batch, "batch");
  require_positive_size(p.dim, "dim");
  require_size_product(p.batch, p.dim, 1, "batch * dim");
  require_input(p.visual, "visual");
  require_input(p.text, "text");
  require_input(p.fused, "fused");

  std::vector<double> cv(static_cast<size_t>(p.batch)), ct(static_cast<size_t>(p.batch));
  cpu::modality_cosines(cv.data(), ct.data(), p);
  std::vector<double> rvt(static_cast<size_t>(p.batch));
  for (int64_t i = 0; i < p.batch; ++i) {
    rvt[i] = ct[i] == 0 ? std::numeric_limits<double>::quiet_NaN() : cv[i] / ct[i];
    out.rvt[i] = static_cast<float>(rvt[i]);
    out.cos_visual[i] = static_cast<float>(cv[i]);
    out.cos_text[i] = static_cast<float>(ct[i]);
  }
  out.summary = summarize(std::move(rvt));
}

void score_separation(ScoreSeparationOutputs& out, const ScoreSeparationParams& p) {
  require_positive_size(p.batch, "batch");
  require_positive_size(p.dim, "dim");
  require_positive_size(p.k, "k");
  require_size_product(p.batch, p.dim, p.k, "batch * k * dim");
  require_input(p.query, "query");
  require_input(p.fused, "fused");
  require_input(p.shuffled, "shuffled");

  cpu::score_cosines(out.positive, out.shuffled, p);
  // Twice the number of wins plus ties: an exact integer, whatever the order.
  int64_t twice_wins = 0;
  for (int64_t i = 0; i < p.batch; ++i)
    for (int64_t k = 0; k < p.k; ++k) {
      const float pos = out.positive[i], neg = out.shuffled[i * p.k + k];
      twice_wins += pos > neg ? 2 : (pos == neg ? 1 : 0);
    }
  out.auc = static_cast<double>(twice_wins) / (2.0 * static_cast<double>(p.batch * p.k));
}

void top_k(int32_t* indices, float* scores, const TopKParams& p) {
  check_retrieval_sizes(p.queries, p.gallery, p.rows, p.cols, p.dim);
  if (p.k < 1 || p.k > p.cols) throw bad_argument(ErrorKind::Range, "k", "must be in [1, cols]");
  require_size_product(p.rows, p.k, 1, "rows * k");
  cpu::top_k(indices, scores, p);
}

void retrieval_metrics(RetrievalOutputs& out, const RetrievalParams& p) {
  check_retrieval_sizes(p.queries, p.gallery, p.rows, p.cols, p.dim);
  require_input(p.targets, "targets");
  for (int64_t i = 0; i < p.rows; ++i)
    if (p.targets[i] < 0 || p.targets[i] >= p.cols)
      throw bad_argument(ErrorKind::Range, "targets", "index " + std::to_string(i) + " is outside [0, cols)");
  for (size_t n = 0; n < p.ks.size(); ++n)
    if (p.ks[n] < 1) throw bad_argument(ErrorKind::Range, "ks", "must be >= 1");

  cpu::target_ranks(out.ranks, p);
  std::vector<double> ranks(static_cast<size_t>(p.rows));
  for (int64_t i = 0; i < p.rows; ++i) ranks[i] = out.ranks[i];
  out.recall.assign(p.ks.size(), 0.0);
  for (size_t n = 0; n < p.ks.size(); ++n) {
    int64_t hits = 0;
    for (int64_t i = 0; i < p.rows; ++i) hits += out.ranks[i] <= p.ks[n];
    out.recall[n] = static_cast<double>(hits) / static_cast<double>(p.rows);
  }
  const Summary s = summarize(std::move(ranks));
  out.median_rank = s.median;
  out.mean_rank = s.mean;
}

}  // namespace mbvr
