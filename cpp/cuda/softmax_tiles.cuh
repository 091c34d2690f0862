// The two tile kernels of the loss (the GPU side of cpu/softmax_tiles) and their small
// follow-up kernels, on the math of ../loss_math.h (docs/math.md §3-§4). Both kernels run
// a list of *jobs*; a job owns a set of rows ("own", 128 per CTA) and walks every row
// block of another set ("walk"), recomputing the logit tile z = S / tau of each pair on
// the fly (never a B x B buffer):
//
//   lse_tiles   per own row, the online log-sum-exp (running max, sum) of its logits
//               other than the positive (kept apart, docs/math.md §3.1: recorded, -inf
//               in the statistics), over the walked blocks of its split; partials per
//               split, merged by lse_merge in split order.
//               jobs: (Q^; M^) row stats of L_qm, (Q^; V^) of L_v, (Q^; T^) of L_t, and
//               (M^; Q^) = the column stats of L_mq (the transposed problem).
//   grad_tiles  per tile, G = dL/dz: off the diagonal from the full log-sum-exps, on it
//               the positives' gradients computed per row in double (loss.cu's
//               finish_rows); then dOwn += G Walk:
//               jobs: (Q^; M^, V^, T^) -> dQ^ (and sum G z for dL/dtau),
//                     (M^; Q^) -> dM^, (V^; Q^) -> dV^, (T^; Q^) -> dT^.
//
// Grid: (own blocks, jobs, walk splits). A split walks a fixed range of blocks, so a
// small batch still fills the GPU; its gradient partials go to their own slice and
// sum_slices adds the slices in split order. Every reduction has a fixed order: the
// results do not depend on scheduling, and no atomics are used.
#pragma once

#include <cstdint>

#include "../loss_math.h"
#include "common.cuh"

namespace mbvr::cuda {

constexpr int kMaxJobs = 4;
constexpr int kMaxTerms = 3;

// One softmax term seen from a job: logits z_ab = c(own_a, walk_b) / tau.
struct TileTerm {
  const void* own = nullptr;   // own rows: float (fp32/tf32) or bf16 (bf16), pitch Dp
  const void* walk = nullptr;  // walked rows, same type
  // grad_tiles, off the diagonal: g = scale * (e^(z - lse_own[a]) + e^(z - lse_walk[b])),
  // the full log-sum-exps of the soft-maxes the entry belongs to (math::fused_grad; a null
  // lse drops its soft-max: math::softmax_grad). Both arrays have Bp entries.
  const float* lse_own = nullptr;
  const float* lse_walk = nullptr;
  // On the diagonal: the positive's dL/dz per own row (Bp entries; the MS share included
  // for the fused term), from finish_rows.
  const float* positive_grad = nullptr;
  float scale = 0;  // weight / B
  int margin = 0;   // 1: the fused term (the margin lowers the diagonal)
};

struct TileJob {
  TileTerm term[kMaxTerms];
  int nterms = 0;
  // lse_tiles outputs: [split][Bp] running max and sum; z of the diagonal (or null).
  float* part_max = nullptr;
  float* part_sum = nullptr;
  float* positive = nullptr;
  // grad_tiles outputs: split 0 accumulates into grad, split s >= 1 into
  // grad_partials + (s - 1) * slice (all pre-zeroed); null grad: no product (only dtau).
  float* grad = nullptr;
  float* grad_partials = nullptr;
  double* dtau = nullptr;  // [split * nblocks + block]: sum of g * z, or null
};

struct TileArgs {
  TileJob job[kMaxJobs];
  int njobs = 0;
  int64_t batch = 0;   // B
  int64_t bp = 0;      // padded B
  int64_t pitch = 0;   // Dp (also the depth of every product)
  int64_t slice = 0;   // Bp * Dp
  int nblocks = 0;     // Bp / 128
  int nsplit = 1;      // walk splits
  int per_split = 1;   // walked blocks per split
  float inv_tau = 0;
  const int32_t* labels = nullptr;  // B, or null
  const float* margin = nullptr;    // B per-row margins
};

// Kernel version: 1 = double-buffered operands (one CTA per SM), 2 = single buffer
// (two CTAs per SM where shared memory allows). Same arithmetic, same bits.
size_t tile_smem_bytes(Precision precision, int version);

// split: tf32 logits in 3xTF32 (see choose_tile_math); ignored for fp32 and bf16.
void launch_lse_tiles(const TileArgs& args, Precision precision, int version, bool split, cudaStream_t stream);
void launch_grad_tiles(const TileArgs& args, Precision precision, int version, bool split, cudaStream_t stream);

// The arithmetic of the tile products for a requested precision. The rounding error of
// a logit is about e * |c| / (sqrt(D) * tau) for unit-scale rows in random directions
// (e = 4e-4 for tf32 operands, 1.6e-3 for bf16), and dL/dz inherits it. So:
//   tf32: plain while tau * sqrt(D) >= 0.8 (tau >= 0.035 at D = 512), else the logits in
//         3xTF32 (split = true: three tf32 products, about 2.2x the time of a step);
//   bf16: bf16 while tau * sqrt(D) >= 0.32 (tau >= 0.014 at D = 512), else tf32 tiles;
//   fp32: FFMA.
// This keeps the bounds of docs/math.md §5, 2e-3 (tf32) and 2e-2 (bf16), down to tau = 0.01.
// MBVR_TF32_SPLIT=0|1 and MBVR_BF16_FALLBACK=0|1 force the choices.
struct TileMath {
  Precision precision;  // engine: Fp32 (FFMA), Tf32 or Bf16
  bool split;           // tf32 logits in 3xTF32
};
TileMath choose_tile_math(Precision requested, double temperature, int64_t dim);

// others[j][i] = the merge over splits, in split order, of (part_max, part_sum)[j]: the
// statistics of row i's entries other than its positive; empty for padded rows.
struct MergeArgs {
  const float* part_max[kMaxJobs] = {};
  const float* part_sum[kMaxJobs] = {};
  math::LseState* others[kMaxJobs] = {};
  int njobs = 0;
  int nsplit = 1;
  int64_t batch = 0, bp = 0;
};
void launch_lse_merge(const MergeArgs& args, cudaStream_t stream);

// out[e] += sum_{s < nextra} partials[s * slice + e], s in order; e < n.
void launch_sum_slices(float* out, const float* partials, int nextra, int64_t slice, int64_t n,
                       cudaStream_t stream);

// Chooses the kernel version for the current device (MBVR_CUDA_KERNEL=1|2 overrides) and
// checks that its shared memory fits; throws a clear Error when no version fits.
int choose_tile_version(Precision precision);

}  // namespace mbvr::cuda
