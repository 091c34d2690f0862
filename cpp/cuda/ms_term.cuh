// The modality-shuffled term L_ms on the GPU (docs/math.md §3.4), the counterpart of
// cpu/ms_term.h: per row, K logits zs_ik = c(q_i, s_ik) / tau (double dot products) and
// the soft-max over (z_ii, zs_i1 .. zs_iK), forward; the K negatives' gradients,
// backward. The positive's share goes into the fused diagonal (loss.cu's finish_rows);
// the math is loss_math.h's ms_forward / ms_negative_grad. One warp per row.
#pragma once

#include <cstdint>

#include "../loss_math.h"
#include "common.cuh"

namespace mbvr::cuda {

struct MsForwardArgs {
  const float* qhat = nullptr;  // Bp x Dp
  const float* shat = nullptr;  // (B*K) x Dp
  const float* positive = nullptr;  // B: the fused z_ii (margin included)
  int64_t pitch = 0, batch = 0, k = 0;
  double inv_tau = 0;
  double* logits = nullptr;     // out: B x K, zs_ik
  math::MsRow* rows = nullptr;  // out: B, each row's loss and log-sum-exp
};
void launch_ms_forward(const MsForwardArgs& args, cudaStream_t stream);

struct MsBackwardArgs {
  const float* qhat = nullptr;
  const float* shat = nullptr;
  int64_t pitch = 0, batch = 0, k = 0;
  const double* logits = nullptr;
  const math::MsRow* rows = nullptr;
  double gamma_over_b = 0;
  // In units of dL/dz * x^ (the 1/tau comes later); null: not wanted.
  float* dq = nullptr;  // +=  sum_k g_ik s^_ik
  float* ds = nullptr;  // =   g_ik q^_i
  double* gz = nullptr;  // out: per row, sum_k g_ik zs_ik (for dL/dtau)
};
void launch_ms_backward(const MsBackwardArgs& args, cudaStream_t stream);

}  // namespace mbvr::cuda
