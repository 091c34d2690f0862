// similarity() and shuffled_logits() on the GPU: the logits of docs/math.md §2 on their
// own, in fp32 like the CPU backend (the same normalisation and the FFMA tile product the
// loss uses at precision fp32).
#include "cuda_backend.h"
#include "normalize.cuh"
#include "tile_mma.cuh"

namespace mbvr::cuda {
namespace {

using SimEngine = FfmaEngine<2>;

__global__ void __launch_bounds__(kTileThreads) similarity_kernel(float* out, const float* a, const float* b,
                                                                  int64_t rows, int64_t cols, int64_t pitch,
                                                                  float inv_tau) {
  extern __shared__ __align__(128) unsigned char smem[];
  float* S = reinterpret_cast<float*>(smem + SimEngine::kStageBytes);
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kBlockRows;
  SimEngine::nt(S, a + r0 * pitch, b + c0 * pitch, pitch, pitch, smem);
  __syncthreads();
  for (int idx = threadIdx.x; idx < kBlockRows * kBlockRows; idx += kTileThreads) {
    const int i = idx / kBlockRows, j = idx % kBlockRows;
    if (r0 + i < rows && c0 + j < cols) out[(r0 + i) * cols + c0 + j] = S[i * kLdS + j] * inv_tau;
  }
}

// One warp per (i, k): out[i K + k] = (q^_i . s^_ik) / tau, the dot in double.
__global__ void shuffled_logits_kernel(float* out, const float* q, const float* s, int64_t batch, int64_t k,
                                       int64_t pitch, double inv_tau) {
  const int lane = threadIdx.x % 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t row = first; row < batch * k; row += step) {
    const float* qi = q + (row / k) * pitch;
    const float* sk = s + row * pitch;
    double dot = 0.0;
    for (int64_t d = lane; d < pitch; d += 32) dot += static_cast<double>(qi[d]) * sk[d];
    dot = warp_sum(dot);
    if (lane == 0) out[row] = static_cast<float>(dot * inv_tau);
  }
}

size_t f32(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

// Uploads rows x dim (host) into a padded buffer and normalises it in place.
void upload_normalized(DeviceBuffer& hat, DeviceBuffer& norm, const float* x, int64_t rows, int64_t dim,
                       bool normalize, cudaStream_t stream) {
  const int64_t rp = padded_rows(rows), dp = padded_dim(dim);
  hat.ensure(f32(rp * dp), "normalized inputs");
  norm.ensure(f32(rp), "row norms");
  CUDA_CHECK(cudaMemcpy2DAsync(hat.as<float>(), f32(dp), x, f32(dim), f32(dim), static_cast<size_t>(rows),
                               cudaMemcpyHostToDevice, stream));
  normalize_rows_forward(hat.as<float>(), norm.as<float>(), nullptr, hat.as<float>(), rows, rp, dim, dp, normalize,
                         stream);
}

}  // namespace

void similarity(float* out, const SimilarityParams& p) {
  const int64_t row_blocks = padded_rows(p.rows) / kBlockRows, col_blocks = padded_rows(p.cols) / kBlockRows;
  if (col_blocks > 65535)
    throw bad_argument(ErrorKind::Range, "cols", "at most " + std::to_string(65535 * kBlockRows) + " on the GPU");
  DeviceBuffer a, b, na, nb, result;
  Stream stream;
  upload_normalized(a, na, p.a, p.rows, p.dim, p.normalize, stream.get());
  upload_normalized(b, nb, p.b, p.cols, p.dim, p.normalize, stream.get());
  result.ensure(f32(p.rows * p.cols), "the similarity matrix");
  const size_t smem = SimEngine::kStageBytes + kSBytes;
  CUDA_CHECK(cudaFuncSetAttribute(similarity_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(col_blocks));
  similarity_kernel<<<grid, kTileThreads, smem, stream.get()>>>(result.as<float>(), a.as<float>(), b.as<float>(),
                                                                p.rows, p.cols, padded_dim(p.dim),
                                                                static_cast<float>(1.0 / p.temperature));
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(out, result.as<float>(), f32(p.rows * p.cols), cudaMemcpyDeviceToHost, stream.get()));
  stream.sync();
}

void shuffled_logits(float* out, const ShuffledLogitsParams& p) {
  DeviceBuffer q, s, nq, ns, result;
  Stream stream;
  upload_normalized(q, nq, p.query, p.batch, p.dim, p.normalize, stream.get());
  upload_normalized(s, ns, p.shuffled, p.batch * p.k, p.dim, p.normalize, stream.get());
  result.ensure(f32(p.batch * p.k), "the shuffled logits");
  shuffled_logits_kernel<<<grid_for(p.batch * p.k, 8 * 4), 256, 0, stream.get()>>>(
      result.as<float>(), q.as<float>(), s.as<float>(), p.batch, p.k, padded_dim(p.dim), 1.0 / p.temperature);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(out, result.as<float>(), f32(p.batch * p.k), cudaMemcpyDeviceToHost, stream.get()));
  stream.sync();
}

}  // namespace mbvr::cuda
