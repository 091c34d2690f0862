// Row normalisation x^ = x / max(||x||, eps) (as torch.nn.functional.normalize) and its
// backward, on the device (the GPU side of cpu/normalize). One warp per row; rows in the
// padded layout of common.cuh (pitch >= dim, padding written as zeros).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "common.cuh"

namespace mbvr::cuda {

// hat (rows_padded x pitch) = x^ of x (rows x dim, pitch), or x itself when !normalize;
// norm[r] = ||x_r|| (when normalize); hat16, if not null, gets a bf16 copy of hat. Rows
// in [rows, rows_padded) and columns in [dim, pitch) are written as zeros. hat may be x
// (in place).
void normalize_rows_forward(float* hat, float* norm, __nv_bfloat16* hat16, const float* x, int64_t rows,
                            int64_t rows_padded, int64_t dim, int64_t pitch, bool normalize, cudaStream_t stream);

// In place: dx holds sum_j g_j * (other row)_j, i.e. dL/dx^ / scale, on entry and dL/dx
// on return (scale = 1 / tau). With g = scale * dx:
//   dx = (g - x^ (x^ . g)) / ||x||   when ||x|| >= eps
//   dx = g / eps                     otherwise
//   dx = g                           without normalisation.
void normalize_rows_backward(float* dx, const float* hat, const float* norm, int64_t rows, int64_t dim,
                             int64_t pitch, float scale, bool normalize, cudaStream_t stream);

}  // namespace mbvr::cuda
