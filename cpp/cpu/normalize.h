// Row normalisation x^ = x / max(||x||, eps) (as torch.nn.functional.normalize) and its
// backward, shared by every CPU entry point.
//
// Normalised copies are never made: a row enters the products raw and its scale
// 1 / max(||x||, eps) is applied to the products instead (see loss.cpp), which saves a
// B x D copy per input. The scale is kept per row here.
#pragma once

#include <cstdint>
#include <vector>

namespace mbvr::cpu {

constexpr double kNormEps = 1e-12;

struct RowScales {
  std::vector<float> inv;    // 1 / max(||x_i||, eps); 1 without normalisation
  std::vector<double> norm;  // ||x_i||, when normalising (empty otherwise)
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

// In place: turns dx into dL/dx, given on entry
//   v = dL/dx^ / scale             (prescaled = false)
//   v = dL/dx^ * inv_i / scale     (prescaled = true: the row scale already applied)
// (scale folds in a constant such as the 1/tau of the logits). With x^ = x * inv:
//   dx = inv (g - x^ (x^ . g)),  g = scale dL/dx^   when ||x|| >= eps
//   dx = inv g                                      otherwise (max() picks the constant)
//   dx = g                                          without normalisation.
// A null dx is skipped.
void normalize_rows_backward(float* dx, const float* x, const RowScales& s, int64_t rows,
                             int64_t dim, double scale, bool prescaled, int threads);

}  // namespace mbvr::cpu
