// The element-wise work on one logit tile: log-sum-exp statistics (forward) and the
// softmax-gradient coefficients (backward).
//
// A tile is nd x nq floats with row stride ld, in the layout of similarity.h: row j is a
// document, column i a query. So a query's softmax (over documents) runs down a
// column, and a document's softmax (over queries, L_mq only) along a row. Masked
// entries hold -inf and contribute nothing anywhere.
//
// Every reduction runs in an order fixed by the tile's shape, never by the thread that
// runs it: per query, down the rows in order (one vector lane per query); per document,
// along the row in 16 lanes combined in lane order.
#pragma once

#include <cstdint>

namespace mbvr::cpu {

// Running (max, sum of exp(z - max)) of a log-sum-exp, kept in double.
struct LseState {
  double max;
  double sum;
};

// Merges a partial (max, sum of exp(z - max)) into s; an all-masked partial has max -inf.
void lse_merge(LseState& s, float part_max, double part_sum);

// Statistics leave each softmax's positive out (the loss keeps it apart as z): with
// `others` the entries but the positive, a = log(sum_others e^{z_j}) - z and
//   lse_minus(others, z) = logsumexp(all) - z = softplus(a)   (the term's loss)
//   lse_full(others, z)  = logsumexp(all)    = z + softplus(a)
// Both stay accurate when the positive dominates (a << 0), where computing the full
// log-sum-exp and subtracting z would cancel; expm1(-lse_minus) is then p - 1 to full
// precision.
double lse_minus(const LseState& others, double z);
double lse_full(const LseState& others, double z);

// `diag`: the positive of document row j sits in column j + diag (none when that is
// outside [0, nq)). Positives are left out of the float sums that feed dL/dtau; the
// caller handles them in double (their g = p - 1 cancels when p is near 1).

// Statistics pass over a fused tile: every document row j is merged into doc_stats[j];
// per query column i, q_max[i] / q_sum[i] receive this tile's partial (max, sum).
void lse_partials(LseState* doc_stats, float* q_max, double* q_sum, const float* z, int64_t nd,
                  int64_t nq, int64_t ld);

// For a term with one softmax per query (visual, text): per query column i,
// q_max[i] = max_j z, z -> e = exp(z - q_max[i]) in place, q_sum[i] = sum_j e and
// q_ez[i] = sum_j e * z over unmasked entries but the positive (for dL/dtau).
void exp_partials(float* z, float* q_max, double* q_sum, double* q_ez, int64_t nd, int64_t nq,
                  int64_t ld, int64_t diag);

// After exp_partials and the merge: g = e * q_factor[i] (q_factor = weight / B *
// exp(q_max - lse)), stored as g * doc_scale[j] (see loss.cpp for why).
void scale_exp_tile(float* z, const float* q_factor, const float* doc_scale, int64_t nd,
                    int64_t nq, int64_t ld);

// In place for the fused term, z -> g * doc_scale[j] with
//   g = scale * (exp(z - lse_q[i]) + exp(z - lse_d[j]))
// (the positives are left to the caller, which overwrites them). Returns sum g * z over
// unmasked entries but the positives, for dL/dtau.
double fused_grad_tile(float* z, const float* lse_q, const float* lse_d, const float* doc_scale,
                       float scale, int64_t nd, int64_t nq, int64_t ld, int64_t diag);

}  // namespace mbvr::cpu
