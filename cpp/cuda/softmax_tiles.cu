// The tile kernels of the loss: statistics (online log-sum-exp) and gradients. See
// softmax_tiles.cuh for the job model and tile_mma.cuh for the products.
//
// Inside a CTA: 8 warps; after a product, warp w handles the 16 tile rows w*16 .. w*16+15
// and lane l the columns l, l+32, l+64, l+96 of each. Row reductions are warp shuffles in
// a fixed pattern, so they are deterministic.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "softmax_tiles.cuh"
#include "tile_mma.cuh"

namespace mbvr::cuda {
namespace {

constexpr float kNegInf = -INFINITY;

// ---------------------------------------------------------------------------
// Shared memory of a tile CTA: [stage | S | small arrays].

constexpr size_t kSmallBytes = 5 * kBlockRows * sizeof(float) + 2 * kBlockRows * sizeof(int) + 8 * sizeof(double);

struct TileSmem {
  unsigned char* stage;
  float* S;
  float* lse_own;
  float* lse_walk;
  float* margin_own;
  float* run_max;
  float* run_sum;
  int* lab_own;
  int* lab_walk;
  double* red;
};

template <class E>
constexpr size_t smem_bytes() {
  return E::kStageBytes + kSBytes + kSmallBytes;
}

template <class E>
__device__ TileSmem carve(unsigned char* base) {
  static_assert(E::kStageBytes % 128 == 0, "stage region alignment");
  TileSmem m;
  m.stage = base;
  m.S = reinterpret_cast<float*>(base + E::kStageBytes);
  float* f = m.S + kBlockRows * kLdS;
  m.lse_own = f;
  m.lse_walk = f + kBlockRows;
  m.margin_own = f + 2 * kBlockRows;
  m.run_max = f + 3 * kBlockRows;
  m.run_sum = f + 4 * kBlockRows;
  m.lab_own = reinterpret_cast<int*>(f + 5 * kBlockRows);
  m.lab_walk = m.lab_own + kBlockRows;
  m.red = reinterpret_cast<double*>(m.lab_walk + kBlockRows);
  return m;
}

template <class E>
__device__ __forceinline__ float tile_exp(float x) {
  if constexpr (E::kAccurateExp) return expf(x);
  else return __expf(x);
}

// z of tile entry (a, b) = global (i, j) from its cosine c; -inf where masked: a padded
// column, or a duplicate (same label, j != i). The margin lowers the fused diagonal.
__device__ __forceinline__ float tile_logit(float c, int a, int b, int64_t i, int64_t j, const TileArgs& args,
                                            const TileSmem& sm, bool margin) {
  if (j >= args.batch) return kNegInf;
  if (i == j) {
    if (margin) c -= sm.margin_own[a];
  } else if (args.labels && sm.lab_own[a] == sm.lab_walk[b]) {
    return kNegInf;
  }
  return c * args.inv_tau;
}

__device__ __forceinline__ void walk_range(const TileArgs& args, int split, int& begin, int& end) {
  begin = split * args.per_split;
  end = begin + args.per_split;
  if (end > args.nblocks) end = args.nblocks;
}

__device__ __forceinline__ void load_walk_labels(const TileArgs& args, const TileSmem& sm, int64_t walk0) {
  if (args.labels && threadIdx.x < kBlockRows) {
    const int64_t j = walk0 + threadIdx.x;
    sm.lab_walk[threadIdx.x] = j < args.batch ? args.labels[j] : 0;
  }
}

// ---------------------------------------------------------------------------
// Statistics.

template <class E>
__global__ void __launch_bounds__(kTileThreads, E::kMinBlocks) lse_tiles_kernel(const TileArgs args) {
  using In = typename E::InT;
  extern __shared__ __align__(128) unsigned char smem[];
  const TileSmem sm = carve<E>(smem);
  const TileJob& job = args.job[blockIdx.y];
  const TileTerm& term = job.term[0];
  const int split = blockIdx.z;
  const int64_t own0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  if (tid < kBlockRows) {
    const int64_t i = own0 + tid;
    sm.run_max[tid] = kNegInf;
    sm.run_sum[tid] = 0.0f;
    sm.lab_own[tid] = (args.labels && i < args.batch) ? args.labels[i] : 0;
    sm.margin_own[tid] = (term.margin && i < args.batch) ? args.margin[i] : 0.0f;
  }
  int w_begin, w_end;
  walk_range(args, split, w_begin, w_end);
  const In* own = static_cast<const In*>(term.own) + own0 * args.pitch;

  for (int w = w_begin; w < w_end; ++w) {
    const int64_t walk0 = static_cast<int64_t>(w) * kBlockRows;
    load_walk_labels(args, sm, walk0);
    // nt() synchronises before it first reads its stage, which also publishes the
    // label and margin arrays written above.
    E::nt(sm.S, own, static_cast<const In*>(term.walk) + walk0 * args.pitch, args.pitch, args.pitch, sm.stage);
    __syncthreads();
#pragma unroll 1
    for (int rr = 0; rr < 16; ++rr) {
      const int a = warp * 16 + rr;
      const int64_t i = own0 + a;
      float z[4];
      float m = kNegInf;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int b = lane + 32 * q;
        const int64_t j = walk0 + b;
        z[q] = tile_logit(sm.S[a * kLdS + b], a, b, i, j, args, sm, term.margin != 0);
        if (i == j) {  // the positive is kept apart: recorded, and out of the statistics
          if (job.positive && i < args.batch) job.positive[i] = z[q];
          z[q] = kNegInf;
        }
        m = fmaxf(m, z[q]);
      }
      m = warp_max(m);
      if (m == kNegInf) continue;  // the whole row of this tile is masked (warp-uniform)
      float s = 0.0f;
#pragma unroll
      for (int q = 0; q < 4; ++q) s += tile_exp<E>(z[q] - m);
      s = warp_sum(s);
      if (lane == 0) math::lse_merge<float>(sm.run_max[a], sm.run_sum[a], m, s);
    }
    __syncthreads();
  }
  if (tid < kBlockRows) {
    const int64_t at = static_cast<int64_t>(split) * args.bp + own0 + tid;
    job.part_max[at] = sm.run_max[tid];
    job.part_sum[at] = sm.run_sum[tid];
  }
}

// ---------------------------------------------------------------------------
// Gradients.

template <class E>
__global__ void __launch_bounds__(kTileThreads, E::kMinBlocks) grad_tiles_kernel(const TileArgs args) {
  using In = typename E::InT;
  using G = typename E::G;
  extern __shared__ __align__(128) unsigned char smem[];
  const TileSmem sm = carve<E>(smem);
  const TileJob& job = args.job[blockIdx.y];
  const int split = blockIdx.z;
  const int64_t own0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  float* grad = nullptr;
  if (job.grad) {
    grad = split == 0 ? job.grad : job.grad_partials + static_cast<int64_t>(split - 1) * args.slice;
    grad += own0 * args.pitch;
  }
  if (tid < kBlockRows) {
    const int64_t i = own0 + tid;
    sm.lab_own[tid] = (args.labels && i < args.batch) ? args.labels[i] : 0;
    sm.margin_own[tid] = i < args.batch ? args.margin[i] : 0.0f;
  }
  int w_begin, w_end;
  walk_range(args, split, w_begin, w_end);
  double dtau = 0.0;  // this thread's share of sum g * z

  for (int w = w_begin; w < w_end; ++w) {
    const int64_t walk0 = static_cast<int64_t>(w) * kBlockRows;
    load_walk_labels(args, sm, walk0);
#pragma unroll 1
    for (int t = 0; t < job.nterms; ++t) {
      const TileTerm& term = job.term[t];
      if (tid < kBlockRows) {
        sm.lse_own[tid] = term.lse_own ? term.lse_own[own0 + tid] : 0.0f;
        sm.lse_walk[tid] = term.lse_walk ? term.lse_walk[walk0 + tid] : 0.0f;
      }
      const In* walk = static_cast<const In*>(term.walk) + walk0 * args.pitch;
      E::nt(sm.S, static_cast<const In*>(term.own) + own0 * args.pitch, walk, args.pitch, args.pitch, sm.stage);
      __syncthreads();

      // S -> G = dL/dz. fp32 G overwrites S in place; a bf16 G overlays S with another
      // stride, so its values wait in registers (packed in pairs) until every warp has
      // read its part of S.
      constexpr bool kInPlace = sizeof(G) == sizeof(float);
      const bool has_own = term.lse_own != nullptr, has_walk = term.lse_walk != nullptr;
      const bool margin = term.margin != 0;
      const auto exp_fn = [](float x) { return tile_exp<E>(x); };
      G* gt = E::g_tile(sm.S, sm.stage);
      __nv_bfloat162 packed[16][2];
      float local = 0.0f;
#pragma unroll
      for (int rr = 0; rr < 16; ++rr) {
        const int a = warp * 16 + rr;
        const int64_t i = own0 + a;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int b = lane + 32 * q;
          const int64_t j = walk0 + b;
          const float z = tile_logit(sm.S[a * kLdS + b], a, b, i, j, args, sm, margin);
          float g = 0.0f;
          if (z != kNegInf && i < args.batch) {
            if (i == j)
              g = term.positive_grad[i];
            else if (has_own && has_walk)
              g = math::fused_grad(z, sm.lse_own[a], sm.lse_walk[b], term.scale, exp_fn);
            else
              g = math::softmax_grad(z, has_own ? sm.lse_own[a] : sm.lse_walk[b], term.scale, exp_fn);
            local += math::dtau_term(g, z);
          }
          if constexpr (kInPlace) {
            gt[a * E::LDG + b] = E::to_g(g);
          } else {
            if (q % 2 == 0) packed[rr][q / 2].x = __float2bfloat16_rn(g);
            else packed[rr][q / 2].y = __float2bfloat16_rn(g);
          }
        }
      }
      dtau += local;
      if constexpr (!kInPlace) {
        __syncthreads();
#pragma unroll
        for (int rr = 0; rr < 16; ++rr)
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const __nv_bfloat16 v = q % 2 == 0 ? packed[rr][q / 2].x : packed[rr][q / 2].y;
            gt[(warp * 16 + rr) * E::LDG + lane + 32 * q] = v;
          }
      }
      __syncthreads();
      if (grad) E::nn(grad, args.pitch, args.pitch, gt, walk, sm.stage);
      __syncthreads();
    }
  }

  if (job.dtau) {
    const double v = warp_sum(dtau);
    if (lane == 0) sm.red[warp] = v;
    __syncthreads();
    if (tid == 0) {
      double s = 0.0;
      for (int k = 0; k < kTileThreads / 32; ++k) s += sm.red[k];
      job.dtau[static_cast<int64_t>(split) * args.nblocks + blockIdx.x] = s;
    }
  }
}

// ---------------------------------------------------------------------------
// Follow-ups.

__global__ void lse_merge_kernel(const MergeArgs args) {
  const int j = blockIdx.y;
  const float* pm = args.part_max[j];
  const float* ps = args.part_sum[j];
  math::LseState* others = args.others[j];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < args.bp;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    math::LseState s = math::lse_empty();
    if (i < args.batch)
      for (int k = 0; k < args.nsplit; ++k) math::lse_merge(s, pm[k * args.bp + i], ps[k * args.bp + i]);
    others[i] = s;
  }
}

__global__ void sum_slices_kernel(float* out, const float* partials, int nextra, int64_t slice, int64_t n) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = out[e];
    for (int s = 0; s < nextra; ++s) v += partials[s * slice + e];
    out[e] = v;
  }
}

// ---------------------------------------------------------------------------
// Launchers.

template <class E>
void launch_tiles(void (*kernel)(const TileArgs), const TileArgs& args, cudaStream_t stream) {
  const size_t smem = smem_bytes<E>();
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>(args.nblocks), static_cast<unsigned>(args.njobs),
                  static_cast<unsigned>(args.nsplit));
  kernel<<<grid, kTileThreads, smem, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

template <template <int> class Engine, int kStages>
void dispatch(bool grad, const TileArgs& args, cudaStream_t stream) {
  using E = Engine<kStages>;
  if (grad) launch_tiles<E>(grad_tiles_kernel<E>, args, stream);
  else launch_tiles<E>(lse_tiles_kernel<E>, args, stream);
}

void launch(bool grad, const TileArgs& args, Precision precision, int version, bool split, cudaStream_t stream) {
  if (args.njobs == 0 || args.nblocks == 0) return;
  const bool two = version != 2;
  switch (precision) {
    case Precision::Fp32:
      two ? dispatch<FfmaEngine, 2>(grad, args, stream) : dispatch<FfmaEngine, 1>(grad, args, stream);
      break;
    case Precision::Tf32:
      if (split) two ? dispatch<Tf32SplitEngine, 2>(grad, args, stream) : dispatch<Tf32SplitEngine, 1>(grad, args, stream);
      else two ? dispatch<Tf32Engine, 2>(grad, args, stream) : dispatch<Tf32Engine, 1>(grad, args, stream);
      break;
    case Precision::Bf16:
      two ? dispatch<Bf16Engine, 2>(grad, args, stream) : dispatch<Bf16Engine, 1>(grad, args, stream);
      break;
  }
}

}  // namespace

size_t tile_smem_bytes(Precision precision, int version) {
  const bool two = version != 2;
  switch (precision) {
    case Precision::Fp32: return two ? smem_bytes<FfmaEngine<2>>() : smem_bytes<FfmaEngine<1>>();
    case Precision::Tf32: return two ? smem_bytes<Tf32Engine<2>>() : smem_bytes<Tf32Engine<1>>();
    case Precision::Bf16: return two ? smem_bytes<Bf16Engine<2>>() : smem_bytes<Bf16Engine<1>>();
  }
  return 0;
}

void launch_lse_tiles(const TileArgs& args, Precision precision, int version, bool split, cudaStream_t stream) {
  launch(false, args, precision, version, split, stream);
}

void launch_grad_tiles(const TileArgs& args, Precision precision, int version, bool split, cudaStream_t stream) {
  launch(true, args, precision, version, split, stream);
}

void launch_lse_merge(const MergeArgs& args, cudaStream_t stream) {
  if (args.njobs == 0) return;
  const dim3 grid(grid_for(args.bp, 256), static_cast<unsigned>(args.njobs));
  lse_merge_kernel<<<grid, 256, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

void launch_sum_slices(float* out, const float* partials, int nextra, int64_t slice, int64_t n,
                       cudaStream_t stream) {
  if (nextra <= 0 || n == 0) return;
  sum_slices_kernel<<<grid_for(n, 256 * 8), 256, 0, stream>>>(out, partials, nextra, slice, n);
  CUDA_CHECK_LAUNCH();
}

TileMath choose_tile_math(Precision requested, double temperature, int64_t dim) {
  const double scale = temperature * std::sqrt(static_cast<double>(dim));
  const auto env = [](const char* name) -> int {
    const char* v = std::getenv(name);
    if (v && std::strcmp(v, "0") == 0) return 0;
    if (v && std::strcmp(v, "1") == 0) return 1;
    return -1;
  };
  TileMath m{requested, false};
  if (requested == Precision::Bf16) {
    const int fallback = env("MBVR_BF16_FALLBACK");
    if (fallback == 1 || (fallback != 0 && scale < 0.32)) m.precision = Precision::Tf32;
  }
  if (m.precision == Precision::Tf32) {
    const int split = env("MBVR_TF32_SPLIT");
    m.split = split == 1 || (split != 0 && scale < 0.8);
  }
  return m;
}

int choose_tile_version(Precision precision) {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int per_block = 0, per_sm = 0, major = 0, minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  const size_t v2 = tile_smem_bytes(precision, 2);
  const auto fits = [&](size_t bytes) { return bytes <= static_cast<size_t>(per_block); };

  int version = 0;
  if (const char* env = std::getenv("MBVR_CUDA_KERNEL")) {
    if (std::strcmp(env, "1") == 0) version = 1;
    if (std::strcmp(env, "2") == 0) version = 2;
  }
  if (version == 0) {
    // Two single-buffered CTAs per SM where they fit (sm_90: 228 KB per SM), else one
    // double-buffered CTA (sm_80: 164 KB per SM).
    const size_t reserved = 1024;  // per CTA, by the hardware
    version = 2 * (v2 + reserved) <= static_cast<size_t>(per_sm) ? 2 : 1;
    if (!fits(tile_smem_bytes(precision, version))) version = version == 1 ? 2 : 1;
  }
  if (!fits(tile_smem_bytes(precision, version)))
    throw Error(ErrorKind::Generic,
                "The CUDA loss kernels need " + std::to_string(v2 / 1024) + " KB of shared memory per block, but this GPU (sm_" +
                    std::to_string(major) + std::to_string(minor) + ") offers " + std::to_string(per_block / 1024) +
                    " KB; use backend: 'cpu'");
  return version;
}

}  // namespace mbvr::cuda
