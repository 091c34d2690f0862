// mbvr evaluation and diagnostics: how a trained bi-encoder retrieves, and whether its
// fused embedding leans on vision or on text (README "Evaluation and
// diagnostics"). No Node.js dependency; the binding (../binding/evaluation.cpp) fills
// these structs. The CPU backend (cpu/evaluation.h) computes the per-row quantities;
// the summaries (percentiles, recall, AUC) are computed here, once for every backend.
//
// Shapes: every embedding matrix is row-major, D floats per row.
// Rule for outputs: every output buffer is written with `=` (fully overwritten), so
// callers may pass uninitialised memory; inputs are never written.
#pragma once

#include <cstdint>
#include <vector>

#include "mbvr.h"

namespace mbvr {

// cos(a, b) below is a.b / (max(||a||, 1e-12) * max(||b||, 1e-12)), evaluated in
// float64 from the float32 inputs (the normalisation of docs/math.md §1).

// A distribution summary over the defined values x_0..x_{n-1} (sorted ascending):
// mean, and percentiles by linear interpolation between closest ranks (numpy's
// default, "linear"): P(q) = x_lo + (h - lo) * (x_{lo+1} - x_lo) with h = (n - 1) q,
// lo = floor(h). median = P(0.5), p10 = P(0.1), p90 = P(0.9). count = n; when n = 0
// every statistic is 0.
struct Summary {
  double mean = 0, median = 0, p10 = 0, p90 = 0;
  int64_t count = 0;
};

// ---------------------------------------------------------------------------
// Modality balance: rvt_i = cos(v_i, m_i) / cos(t_i, m_i) (eq. 1-3 of the seed paper).

struct ModalityBalanceParams {
  const float* visual = nullptr;  // B x D
  const float* text = nullptr;    // B x D
  const float* fused = nullptr;   // B x D
  int64_t batch = 0, dim = 0;
  int threads = 0;
};

struct ModalityBalanceOutputs {
  float* rvt = nullptr;         // B; NaN where cos(t_i, m_i) == 0 (the ratio is undefined)
  float* cos_visual = nullptr;  // B: cos(v_i, m_i)
  float* cos_text = nullptr;    // B: cos(t_i, m_i)
  Summary summary;              // over the rows whose ratio is defined, from float64 ratios
};

void modality_balance(ModalityBalanceOutputs& out, const ModalityBalanceParams& p);

// ---------------------------------------------------------------------------
// Score separation: positives cos(q_i, m_i) against MS negatives cos(q_i, s_ik).

struct ScoreSeparationParams {
  const float* query = nullptr;     // B x D
  const float* fused = nullptr;     // B x D
  const float* shuffled = nullptr;  // B x K x D
  int64_t batch = 0, dim = 0, k = 0;
  int threads = 0;
};

struct ScoreSeparationOutputs {
  float* positive = nullptr;  // B
  float* shuffled = nullptr;  // B x K
  // P(positive_i > shuffled_ik) over the B * K pairs (i, k), ties counting 1/2, compared
  // as the float32 values returned above (so it can be recomputed from them exactly).
  double auc = 0;
};

void score_separation(ScoreSeparationOutputs& out, const ScoreSeparationParams& p);

// ---------------------------------------------------------------------------
// Retrieval. Scores s_ij = c(q_i, g_j): cosines with `normalize` (rows normalised as in
// docs/math.md §2, products in float32 by the tile product), dot products without.
// Candidates are ordered by score descending, then by gallery index ascending; NaN
// scores (only possible without `normalize`, from overflowing products) count as -inf.

struct TopKParams {
  const float* queries = nullptr;  // rows x D
  const float* gallery = nullptr;  // cols x D
  int64_t rows = 0, cols = 0, dim = 0;
  int64_t k = 0;  // 1 <= k <= cols
  bool normalize = true;
  int threads = 0;
};

// indices, scores: rows x k, best first; the result is the same for any thread count.
// Never holds a rows x cols matrix: gallery tiles are streamed past per-query selections.
void top_k(int32_t* indices, float* scores, const TopKParams& p);

struct RetrievalParams {
  const float* queries = nullptr;    // rows x D
  const float* gallery = nullptr;    // cols x D
  const int32_t* targets = nullptr;  // rows; targets[i] in [0, cols)
  int64_t rows = 0, cols = 0, dim = 0;
  std::vector<int64_t> ks = {1, 5, 10};  // each >= 1
  bool normalize = true;
  int threads = 0;
};

struct RetrievalOutputs {
  int32_t* ranks = nullptr;  // rows (caller's buffer): 1 + #{j != t : s_ij > s_it or (s_ij == s_it and j < t)}
  std::vector<double> recall;  // one per ks: share of queries with rank <= ks[n]
  double median_rank = 0;      // P(0.5) of the ranks as in Summary
  double mean_rank = 0;
};

void retrieval_metrics(RetrievalOutputs& out, const RetrievalParams& p);

// The Summary of `values` (any order; NaN values are left out). Exposed for the tests
// and the report.
Summary summarize(std::vector<double> values);

}  // namespace mbvr
