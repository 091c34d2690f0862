// The element-wise work on one logit tile of the CPU backend: log-sum-exp statistics
// (forward) and the soft-max gradient coefficients (backward), on the math of
// ../loss_math.h (docs/math.md §3-§4). The CUDA counterpart is cuda/softmax_tiles.cu.
//
// A tile is nd x nq floats with row stride ld, in the layout of similarity.h: row j is a
// document, column i a query. So a query's soft-max (over documents) runs down a
// column, and a document's soft-max (over queries, L_mq only) along a row. Masked
// entries and the positives (kept apart, docs/math.md §3.1) hold -inf and contribute
// nothing anywhere; the caller handles the positives in double.
//
// Every reduction runs in an order fixed by the tile's shape, never by the thread that
// runs it: per query, down the rows in order (one vector lane per query); per document,
// along the row in 16 lanes combined in lane order.
#pragma once

#include <cstdint>

#include "../loss_math.h"

namespace mbvr::cpu {

// Statistics pass over a fused tile: every document row j is merged into doc_stats[j];
// per query column i, q_max[i] / q_sum[i] receive this tile's partial (max, sum).
void lse_partials(math::LseState* doc_stats, float* q_max, double* q_sum, const float* z, int64_t nd,
                  int64_t nq, int64_t ld);

// For a term with one soft-max per query (visual, text): per query column i,
// q_max[i] = max_j z, z -> e = exp(z - q_max[i]) in place, q_sum[i] = sum_j e and
// q_ez[i] = sum_j e * z over the entries that are not -inf (for dL/dtau).
void exp_partials(float* z, float* q_max, double* q_sum, double* q_ez, int64_t nd, int64_t nq,
                  int64_t ld);

// After exp_partials and the merge: g = e * q_factor[i] (q_factor = weight / B *
// exp(q_max - lse)), stored as g * doc_scale[j] (see loss.cpp for why).
void scale_exp_tile(float* z, const float* q_factor, const float* doc_scale, int64_t nd,
                    int64_t nq, int64_t ld);

// In place for the fused term, z -> g * doc_scale[j] with g = math::fused_grad(z,
// lse_q[i], lse_d[j], scale) (-inf entries: 0; the caller overwrites the positives).
// Returns sum g * z over the entries that are not -inf, for dL/dtau.
double fused_grad_tile(float* z, const float* lse_q, const float* lse_d, const float* doc_scale,
                       float scale, int64_t nd, int64_t nq, int64_t ld);

}  // namespace mbvr::cpu
