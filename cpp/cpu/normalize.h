// Row normalisation x^ = x / max(||x||, eps) (as torch.nn.functional.normalize) and its
// backward, shared by every CPU entry point.
#pragma once

#include <cstdint>
#include <vector>

namespace mbvr::cpu {

constexpr double kNormEps = 1e-12;

// The rows of one input as the kernels see them: normalised copies when normalising,
// else the caller's memory itself (never written).
struct NormalizedRows {
  const float* hat = nullptr;  // rows x dim
  std::vector<float> store;    // owns `hat` when normalising
  std::vector<double> norm;    // ||x_i||, when normalising
};

// Fills `out` for x (rows x dim); parallel over rows.
void normalize_rows_forward(NormalizedRows& out, const float* x, int64_t rows, int64_t dim,
                            bool normalize, int threads);

// In place: dx holds dL/dx^ / scale on entry and dL/dx on return (scale folds in a
// constant factor such as the 1/tau of the logits). With g = scale * dx^:
//   dx = (g - x^ (x^ . g)) / ||x||   when ||x|| >= eps
//   dx = g / eps                     otherwise (the max() picks the constant)
//   dx = g                           without normalisation (x^ = x).
// A null dx is skipped.
void normalize_rows_backward(float* dx, const NormalizedRows& x, int64_t rows, int64_t dim,
                             double scale, int threads);

}  // namespace mbvr::cpu
