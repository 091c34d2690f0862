#include "normalize.cuh"

namespace mbvr::cuda {
namespace {

constexpr int kWarps = 8;  // rows per block

__global__ void normalize_forward_kernel(float* hat, float* norm, __nv_bfloat16* hat16, const float* x,
                                         int64_t rows, int64_t rows_padded, int64_t dim, int64_t pitch,
                                         bool normalize) {
  const int lane = threadIdx.x % 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t r = first; r < rows_padded; r += step) {
    float* h = hat + r * pitch;
    __nv_bfloat16* h16 = hat16 ? hat16 + r * pitch : nullptr;
    if (r >= rows) {
      for (int64_t d = lane; d < pitch; d += 32) {
        h[d] = 0.0f;
        if (h16) h16[d] = __float2bfloat16_rn(0.0f);
      }
      continue;
    }
    const float* xr = x + r * pitch;
    double inv = 1.0;
    if (normalize) {
      double ss = 0.0;  // double: no overflow for large rows, matches the CPU's sum
      for (int64_t d = lane; d < dim; d += 32) ss += static_cast<double>(xr[d]) * xr[d];
      ss = warp_sum(ss);
      const double n = sqrt(ss);
      if (lane == 0) norm[r] = static_cast<float>(n);
      inv = 1.0 / fmax(n, static_cast<double>(kNormEps));
    }
    // Each lane reads element d before writing it, so hat may alias x.
    for (int64_t d = lane; d < pitch; d += 32) {
      const float v = d < dim ? (normalize ? static_cast<float>(xr[d] * inv) : xr[d]) : 0.0f;
      h[d] = v;
      if (h16) h16[d] = __float2bfloat16_rn(v);
    }
  }
}

__global__ void normalize_backward_kernel(float* dx, const float* hat, const float* norm, int64_t rows,
                                          int64_t dim, int64_t pitch, float scale, bool normalize) {
  const int lane = threadIdx.x % 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t r = first; r < rows; r += step) {
    float* g = dx + r * pitch;
    const float n = normalize ? norm[r] : 1.0f;
    if (!normalize || n < kNormEps) {
      const double f = normalize ? static_cast<double>(scale) / kNormEps : scale;
      for (int64_t d = lane; d < dim; d += 32) g[d] = static_cast<float>(g[d] * f);
      continue;
    }
    const float* h = hat + r * pitch;
    double proj = 0.0;
    for (int64_t d = lane; d < dim; d += 32) proj += static_cast<double>(h[d]) * g[d];
    proj = warp_sum(proj);
    const double f = static_cast<double>(scale) / n;
    for (int64_t d = lane; d < dim; d += 32) g[d] = static_cast<float>((g[d] - h[d] * proj) * f);
  }
}

}  // namespace

void normalize_rows_forward(float* hat, float* norm, __nv_bfloat16* hat16, const float* x, int64_t rows,
                            int64_t rows_padded, int64_t dim, int64_t pitch, bool normalize, cudaStream_t stream) {
  if (rows_padded == 0) return;
  normalize_forward_kernel<<<grid_for(rows_padded, kWarps * 4), kWarps * 32, 0, stream>>>(
      hat, norm, hat16, x, rows, rows_padded, dim, pitch, normalize);
  CUDA_CHECK_LAUNCH();
}

void normalize_rows_backward(float* dx, const float* hat, const float* norm, int64_t rows, int64_t dim,
                             int64_t pitch, float scale, bool normalize, cudaStream_t stream) {
  if (!dx || rows == 0) return;
  normalize_backward_kernel<<<grid_for(rows, kWarps * 4), kWarps * 32, 0, stream>>>(dx, hat, norm, rows, dim,
                                                                                    pitch, scale, normalize);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mbvr::cuda
