// Row normalisation x^ = x / max(||x||, eps) (as torch.nn.functional.normalize) and its
// backward (docs/math.md §1, §3.6), shared by every CPU entry point.
//
// Normalised copies are rarely made: a row enters the products raw and its scale
// 1 / max(||x||, eps) is applied to the products instead (see loss.cpp), which saves a
// B x D copy per input. The exception is an input with row norms outside [1e-30, 1e30]:
// raw, its products could overflow or fall into float's subnormal range (and its inverse
// norms could not be stored as floats), so it enters as a normalised copy (scale 1).
#pragma once

#include <cstdint>
#include <vector>

#include "large_buffer.h"

namespace mbvr::cpu {

// How the rows of one input enter the products.
struct RowScales {
  const float* rows = nullptr;  // the operand: the caller's rows, or `copy`
  std::vector<float> inv;       // per row, the factor turning an operand row into x^:
                                // 1 / max(||x||, eps), or 1 (a copy; no normalisation)
  std::vector<double> norm;     // ||x_i|| of the caller's rows, when normalising
  bool copied = false;          // rows == copy.data(), already normalised
  LargeArray<float> copy;
  bool normalized() const { return !norm.empty(); }
};

// Fills `out` for x (rows x dim); parallel over rows.
void normalize_rows_forward(RowScales& out, const float* x, int64_t rows, int64_t dim,
                            bool normalize, int threads);

// Normalised copies, for callers that want them (retrieval.cpp): `hat` points at the
// copy when normalising, else at the caller's memory itself (never written).
struct NormalizedRows {
  const float* hat = nullptr;  // rows x dim
  std::vector<float> store;    // owns `hat` when normalising
};

// One row of a normalised copy: hat = x * (1 / max(||x||, eps)), the norm and the
// product in float64, then rounded. Every normalised copy is made by this function.
void normalize_row(float* hat, const float* x, int64_t dim);
void normalize_rows_forward(NormalizedRows& out, const float* x, int64_t rows, int64_t dim,
                            bool normalize, int threads);

// In place: turns dx into dL/dx for the caller's rows x, given on entry
//   v = dL/dx^ / scale                 (against_operand = false)
//   v = dL/dx^ * s.inv[i] / scale      (against_operand = true: accumulated against the
//                                       operand rows, whose factor s.inv is then folded in)
// (scale folds in a constant such as the 1/tau of the logits); see math::normalize_backward.
// A null dx is skipped.
void normalize_rows_backward(float* dx, const float* x, const RowScales& s, int64_t rows,
                             int64_t dim, double scale, bool against_operand, int threads);

}  // namespace mbvr::cpu
