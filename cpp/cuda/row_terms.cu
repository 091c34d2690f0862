#include "row_terms.cuh"

#include <cmath>

namespace mbvr::cuda {
namespace {

constexpr int kWarps = 8;

__global__ void row_terms_kernel(const RowTermsArgs a) {
  const int lane = threadIdx.x % 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t i = first; i < a.batch; i += step) {
    const float zp = a.pos_f[i];
    float ms = 0.0f;
    if (a.shat) {
      const float* q = a.qhat + i * a.pitch;
      for (int64_t k = 0; k < a.k; ++k) {
        const float* s = a.shat + (i * a.k + k) * a.pitch;
        double dot = 0.0;
        for (int64_t d = lane; d < a.pitch; d += 32) dot += static_cast<double>(q[d]) * s[d];
        dot = warp_sum(dot);
        if (lane == 0) a.zs[i * a.k + k] = static_cast<float>(dot * a.inv_tau);
      }
      if (lane == 0) {
        // lse over (z_ii, zs_i1 .. zs_iK) = m + log1p(sum of the others' exp(x - m)), with
        // m the largest: exact when the positive dominates (no 1 + tiny rounding).
        double m = zp;
        int64_t arg = -1;  // -1: the positive is the largest
        for (int64_t k = 0; k < a.k; ++k)
          if (a.zs[i * a.k + k] > m) m = a.zs[i * a.k + k], arg = k;
        double rest = arg < 0 ? 0.0 : exp(zp - m);
        for (int64_t k = 0; k < a.k; ++k)
          if (k != arg) rest += exp(a.zs[i * a.k + k] - m);
        const double lse = m + log1p(rest);
        a.lse_ms[i] = lse;
        ms = static_cast<float>((m - zp) + log1p(rest));
      }
    }
    if (lane == 0) {
      float* rv = a.row_values;
      rv[kRowQm * a.bp + i] = a.lse_f[i] - zp;
      rv[kRowMq * a.bp + i] = a.lse_col[i] - zp;
      rv[kRowV * a.bp + i] = a.lse_v ? a.lse_v[i] - a.pos_v[i] : 0.0f;
      rv[kRowT * a.bp + i] = a.lse_t ? a.lse_t[i] - a.pos_t[i] : 0.0f;
      rv[kRowMs * a.bp + i] = ms;
    }
  }
}

__global__ void ms_backward_kernel(const MsBackwardArgs a) {
  const int lane = threadIdx.x % 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t i = first; i < a.batch; i += step) {
    const double lse = a.lse_ms[i];
    const float zp = a.pos_f[i];
    // dL_ms/dz_ii = gamma/B (pi_0 - 1) = -gamma/B sum_k pi_k: the sum, not 1 - pi_0, so
    // that a dominant positive keeps its small gradient.
    float gp = 0.0f;
    double dtau = 0.0;  // sum g z = sum_k g_k (zs_k - z_ii)
    for (int64_t k = 0; k < a.k; ++k) {
      const float zs = a.zs[i * a.k + k];
      const float g = static_cast<float>(a.gamma_over_b * exp(zs - lse));  // dL_ms / dzs_ik
      gp -= g;
      dtau += static_cast<double>(g) * (static_cast<double>(zs) - zp);
    }
    const float* q = a.qhat + i * a.pitch;
    const float* m = a.mhat + i * a.pitch;
    float* dq = a.dq ? a.dq + i * a.pitch : nullptr;
    float* dm = a.dm ? a.dm + i * a.pitch : nullptr;
    for (int64_t d = lane; d < a.pitch; d += 32) {
      if (dq) dq[d] += gp * m[d];
      if (dm) dm[d] += gp * q[d];
    }
    for (int64_t k = 0; k < a.k; ++k) {
      const float g = static_cast<float>(a.gamma_over_b * exp(a.zs[i * a.k + k] - lse));
      const int64_t row = i * a.k + k;
      const float* s = a.shat + row * a.pitch;
      float* ds = a.ds ? a.ds + row * a.pitch : nullptr;
      for (int64_t d = lane; d < a.pitch; d += 32) {
        if (dq) dq[d] += g * s[d];
        if (ds) ds[d] = g * q[d];
      }
    }
    if (lane == 0) a.row_values[kRowDtauMs * a.bp + i] = static_cast<float>(dtau);
  }
}

constexpr int kSumThreads = 1024;

__global__ void sum_rows_kernel(double* sums, const float* values, int count, int64_t stride, int64_t n) {
  __shared__ double part[kSumThreads];
  for (int c = 0; c < count; ++c) {
    const float* v = values + c * stride;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kSumThreads) s += v[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int half = kSumThreads / 2; half > 0; half >>= 1) {
      if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) sums[c] = part[0];
    __syncthreads();
  }
}

}  // namespace

void launch_row_terms(const RowTermsArgs& args, cudaStream_t stream) {
  row_terms_kernel<<<grid_for(args.batch, kWarps * 4), kWarps * 32, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

void launch_ms_backward(const MsBackwardArgs& args, cudaStream_t stream) {
  ms_backward_kernel<<<grid_for(args.batch, kWarps * 4), kWarps * 32, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

void launch_sum_rows(double* sums, const float* values, int count, int64_t stride, int64_t n,
                     cudaStream_t stream) {
  sum_rows_kernel<<<1, kSumThreads, 0, stream>>>(sums, values, count, stride, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mbvr::cuda
