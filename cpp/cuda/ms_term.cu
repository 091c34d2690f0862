#include "ms_term.cuh"

namespace mbvr::cuda {
namespace {

constexpr int kWarps = 8;

__global__ void ms_forward_kernel(const MsForwardArgs a) {
  const int lane = threadIdx.x % 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t i = first; i < a.batch; i += step) {
    const float* q = a.qhat + i * a.pitch;
    double* zs = a.logits + i * a.k;
    for (int64_t k = 0; k < a.k; ++k) {
      const float* s = a.shat + (i * a.k + k) * a.pitch;
      double dot = 0.0;
      for (int64_t d = lane; d < a.pitch; d += 32) dot += static_cast<double>(q[d]) * s[d];
      dot = warp_sum(dot);
      if (lane == 0) zs[k] = dot * a.inv_tau;
    }
    __syncwarp();
    if (lane == 0) a.rows[i] = math::ms_forward(a.positive[i], zs, a.k);
  }
}

__global__ void ms_backward_kernel(const MsBackwardArgs a) {
  const int lane = threadIdx.x % 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t i = first; i < a.batch; i += step) {
    const double lse = a.rows[i].lse;
    const float* q = a.qhat + i * a.pitch;
    float* dq = a.dq ? a.dq + i * a.pitch : nullptr;
    double gz = 0.0;
    for (int64_t k = 0; k < a.k; ++k) {
      const int64_t row = i * a.k + k;
      const double zs = a.logits[row];
      const double g = math::ms_negative_grad(zs, lse, a.gamma_over_b);
      gz += math::dtau_term(g, zs);
      const float gf = static_cast<float>(g);
      const float* s = a.shat + row * a.pitch;
      float* ds = a.ds ? a.ds + row * a.pitch : nullptr;
      for (int64_t d = lane; d < a.pitch; d += 32) {
        if (dq) dq[d] += gf * s[d];
        if (ds) ds[d] = gf * q[d];
      }
    }
    if (lane == 0) a.gz[i] = gz;
  }
}

}  // namespace

void launch_ms_forward(const MsForwardArgs& args, cudaStream_t stream) {
  if (args.batch == 0) return;
  ms_forward_kernel<<<grid_for(args.batch, kWarps * 4), kWarps * 32, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

void launch_ms_backward(const MsBackwardArgs& args, cudaStream_t stream) {
  if (args.batch == 0) return;
  ms_backward_kernel<<<grid_for(args.batch, kWarps * 4), kWarps * 32, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mbvr::cuda
