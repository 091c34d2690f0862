// The modality-shuffled term L_ms on the CPU (docs/math.md §3.4), for the query rows of a
// loss call: per row, K logits zs_ik = c(q_i, s_ik) / tau and a soft-max over
// (z_ii, zs_i1 .. zs_iK). The positive's share of the gradient goes into the fused
// diagonal (loss.cpp); ms_backward applies the K negatives'. The CUDA counterpart is
// cuda/ms_term.cu; the math is loss_math.h's ms_forward / ms_negative_grad.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "../loss_math.h"
#include "normalize.h"

namespace mbvr::cpu {

struct MsTerm {
  int64_t rows = 0, k = 0;
  std::vector<double> logits;     // rows x K: zs_ik
  std::vector<math::MsRow> row;   // rows: loss and log-sum-exp of each row's soft-max
};

// ms_logit(q_row, q_factor, s_row, s_factor) = c(q, s) / tau from operand rows and their
// factors (normalize.h), rounded as the tiles round their operands (strip_products.h).
using MsLogit = std::function<double(const float*, float, const float*, float)>;

// Fills `out` for query rows 0..rows-1 whose fused positives z_ii are `positive`. Work is
// split in chunks of `chunk` rows (a fixed split: thread counts cannot change a bit).
void ms_forward(MsTerm& out, const RowScales& q, const RowScales& s, const float* positive, int64_t rows,
                int64_t k, int64_t dim, int64_t chunk, const MsLogit& ms_logit, int threads);

// The K negatives' gradients, in units of dL/dz (the 1/tau and the normalisation backward
// come later): dq_i += sum_k g_ik s^_ik (dq may be null), ds_ik = g_ik q^_i (ds may be
// null), g_ik = gamma / B * pi_ik. Returns sum_ik g_ik zs_ik (for dL/dtau), summed per
// chunk and then in chunk order.
double ms_backward(float* dq, float* ds, const MsTerm& ms, const RowScales& q, const RowScales& s, int64_t dim,
                   double gamma_over_b, int64_t chunk, int threads);

}  // namespace mbvr::cpu
