// The per-row work of the loss: the modality-shuffled (MS) term, forward and backward,
// the per-row loss values, and a deterministic sum of per-row arrays. O(B K D) work,
// one warp per row (the GPU side of LossRun::shuffled_term / finish_gradients).
#pragma once

#include <cstdint>

#include "common.cuh"

namespace mbvr::cuda {

// Per-row values, rows of the row_values array ([kRowValues][bp] floats).
enum RowValue { kRowQm = 0, kRowMq, kRowV, kRowT, kRowMs, kRowDtauMs, kRowValues };

struct RowTermsArgs {
  const float* qhat = nullptr;  // Bp x Dp
  const float* shat = nullptr;  // (B*K) x Dp, or null without the MS term
  int64_t pitch = 0, batch = 0, k = 0, bp = 0;
  const float* pos_f = nullptr;  // z_ii of each term (tile values, margin included)
  const float* pos_v = nullptr;
  const float* pos_t = nullptr;
  const float* lse_f = nullptr;    // row log-sum-exps
  const float* lse_col = nullptr;  // column log-sum-exps of the fused term
  const float* lse_v = nullptr;    // null when alpha = 0
  const float* lse_t = nullptr;    // null when beta = 0
  double inv_tau = 0;
  float* zs = nullptr;      // out: B x K shuffled logits (MS only)
  double* lse_ms = nullptr;  // out: B (MS only)
  float* row_values = nullptr;  // out: [kRowValues][bp]
};
void launch_row_terms(const RowTermsArgs& args, cudaStream_t stream);

struct MsBackwardArgs {
  const float* qhat = nullptr;
  const float* mhat = nullptr;
  const float* shat = nullptr;
  int64_t pitch = 0, batch = 0, k = 0, bp = 0;
  const float* pos_f = nullptr;
  const float* zs = nullptr;
  const double* lse_ms = nullptr;
  float gamma_over_b = 0;
  // Accumulators in units of dL/dz * x^ (the 1/tau comes later); null: not wanted.
  float* dq = nullptr;  // +=
  float* dm = nullptr;  // +=
  float* ds = nullptr;  // =
  float* row_values = nullptr;  // out: the kRowDtauMs row (sum of g * z of the MS term)
};
void launch_ms_backward(const MsBackwardArgs& args, cudaStream_t stream);

// sums[a] = sum_{i < n} values[a * stride + i] in double, a < count, in a fixed order.
void launch_sum_rows(double* sums, const float* values, int count, int64_t stride, int64_t n,
                     cudaStream_t stream);

}  // namespace mbvr::cuda
