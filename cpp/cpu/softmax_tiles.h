// The element-wise work on one logit tile: online log-sum-exp statistics (forward) and
// the softmax-gradient coefficients (backward). A tile is nr x nc floats, row stride nc.
// Masked entries hold -inf and contribute nothing anywhere.
//
// Every reduction runs in an order fixed by the tile's shape (16 float lanes, combined
// in lane order, then added to a double), never by the thread that runs it.
#pragma once

#include <cstdint>

namespace mbvr::cpu {

// Running (max, sum of exp(z - max)) of a log-sum-exp, kept in double.
struct LseState {
  double max;
  double sum;
};

// For each row i: merges the row's entries into rows[i].
void lse_update_rows(LseState* rows, const float* z, int64_t nr, int64_t nc);

// For each column j: merges the column's entries into cols[j]. colmax: nc floats scratch.
void lse_update_cols(LseState* cols, const float* z, int64_t nr, int64_t nc, float* colmax);

// In place, z -> dL/dz for a term with one softmax per row and (when lse_col is not
// null) one per column, all scaled by `scale` (= weight / B):
//   g_ij = scale * (exp(z_ij - lse_row_i) [+ exp(z_ij - lse_col_j)] - n_dir * [i == j])
// with n_dir = 1 or 2 (softmaxes the positive belongs to). `diagonal`: the tile lies on
// the block diagonal, so its local entry (l, l) is the positive of row l.
// Returns sum_ij g_ij * z_ij over unmasked entries (for dL/dtau). Masked entries -> 0.
double softmax_grad_tile(float* z, int64_t nr, int64_t nc, const float* lse_row,
                         const float* lse_col, bool diagonal, float scale);

}  // namespace mbvr::cpu
