// MBVR loss and gradients on the GPU (docs/math.md §2-§3), in O(B*D) memory: the same
// decomposition as cpu/loss.cpp, on the same math (../loss_math.h), with the tile loops
// turned into grids.
//
//   normalise      one warp per row; x^ in fp32 (and a bf16 copy for bf16)
//   statistics     lse_tiles: per row, the statistics of L_qm, L_v, L_t (own = Q^) and
//                  per column those of L_mq (own = M^, the transposed problem) over the
//                  entries other than the positive, recomputing each 128 x 128 logit
//                  tile on the fly; lse_merge
//   MS term        ms_forward (ms_term.cu): K dot products per row, its soft-max
//   rows           finish_rows: per row, in double, each term's loss, the full
//                  log-sum-exps for the tiles and the positives' gradients (the fused
//                  one with the MS share); sum_rows adds the losses in a fixed order
//   gradients      grad_tiles: recompute each tile, G = dL/dz, then
//                  dQ^ += G X^ (row-owned, also sum G z) and dX^ += G^T Q^ (column-owned,
//                  as rows of the transposed problem): no atomics; split partials summed
//                  in split order; ms_backward (the K negatives); normalisation backward
//                  with 1/tau
//
// Cost: 16 products of 2*B^2*D flops (4 statistics, 6 + 6 gradients: each gradient
// kernel recomputes its logits). Memory: the inputs, their gradients, and O(B) scratch
// (plus, for B <= 8192 only, walk-split gradient slices).
#include <algorithm>
#include <cstring>
#include <vector>

#include "cuda_backend.h"
#include "loss_core.cuh"
#include "normalize.cuh"

namespace mbvr::cuda {
namespace {

__global__ void fill_kernel(float* x, float v, int64_t n) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[e] = v;
}

size_t f32(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }
size_t f64(int64_t n) { return static_cast<size_t>(n) * sizeof(double); }

// Statistics slots: the row soft-maxes of the fused, visual and text terms; the columns
// of the fused term (L_mq).
enum Slot { kSlotF = 0, kSlotV = 1, kSlotT = 2, kSlotCol = 3 };

// Per row i (padded rows get zeros): each term's loss, the full log-sum-exps the
// gradient tiles read, and the positives' gradients (docs/math.md §3.1-3.4), in double.
struct FinishRowsArgs {
  const math::LseState* others = nullptr;  // [4][bp]
  const float* pos = nullptr;              // [3][bp]
  const math::MsRow* ms = nullptr;         // B, or null without the MS term
  bool use_v = false, use_t = false;
  int64_t batch = 0, bp = 0;
  double inv_b = 0, alpha = 0, beta = 0, gamma = 0;
  float* lse = nullptr;            // out: [4][bp]
  float* positive_grad = nullptr;  // out: [3][bp]
  double* row_values = nullptr;    // out: [kRowValues][bp] (all but kRowGzMs)
};

__global__ void finish_rows_kernel(const FinishRowsArgs a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.bp;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const bool row = i < a.batch;
    const math::LseState* o = a.others;
    const math::LseState f = o[kSlotF * a.bp + i], col = o[kSlotCol * a.bp + i];
    const double zf = row ? a.pos[kSlotF * a.bp + i] : 0.0;
    const double ms_share = row && a.ms ? math::ms_positive_grad(a.ms[i], a.gamma * a.inv_b) : 0.0;
    a.lse[kSlotF * a.bp + i] = row ? static_cast<float>(math::lse_full(f, zf)) : 0.0f;
    a.lse[kSlotCol * a.bp + i] = row ? static_cast<float>(math::lse_full(col, zf)) : 0.0f;
    a.positive_grad[kSlotF * a.bp + i] =
        row ? static_cast<float>(math::fused_positive_grad(f, col, zf, a.inv_b, ms_share)) : 0.0f;
    a.row_values[kRowQm * a.bp + i] = row ? math::lse_minus(f, zf) : 0.0;
    a.row_values[kRowMq * a.bp + i] = row ? math::lse_minus(col, zf) : 0.0;
    a.row_values[kRowMs * a.bp + i] = row && a.ms ? a.ms[i].loss : 0.0;
    const bool use[2] = {a.use_v, a.use_t};
    const double weight[2] = {a.alpha, a.beta};
    const int slot[2] = {kSlotV, kSlotT}, value[2] = {kRowV, kRowT};
    for (int n = 0; n < 2; ++n) {
      const math::LseState others = o[slot[n] * a.bp + i];
      const bool on = row && use[n];
      const double z = on ? a.pos[slot[n] * a.bp + i] : 0.0;
      a.lse[slot[n] * a.bp + i] = on ? static_cast<float>(math::lse_full(others, z)) : 0.0f;
      a.positive_grad[slot[n] * a.bp + i] =
          on ? static_cast<float>(weight[n] * a.inv_b * math::positive_grad(others, z)) : 0.0f;
      a.row_values[value[n] * a.bp + i] = on ? math::lse_minus(others, z) : 0.0;
    }
  }
}

constexpr int kSumThreads = 1024;

// sums[c] = sum_{i < n} values[c * stride + i], c < count, in a fixed order.
__global__ void sum_rows_kernel(double* sums, const double* values, int count, int64_t stride, int64_t n) {
  __shared__ double part[kSumThreads];
  for (int c = 0; c < count; ++c) {
    const double* v = values + c * stride;
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

// ---------------------------------------------------------------------------
// Plan and workspace.

LossPlan make_plan(const LossParams& p, const bool want[kInputs]) {
  LossPlan plan;
  plan.batch = p.batch;
  plan.dim = p.dim;
  plan.bp = padded_rows(p.batch);
  plan.dp = padded_dim(p.dim);
  const TileMath math = choose_tile_math(p.precision, p.temperature, p.dim);
  plan.precision = math.precision;
  plan.tf32_split = math.split;
  plan.use[kQuery] = plan.use[kFused] = true;
  plan.use[kVisual] = p.alpha > 0;
  plan.use[kText] = p.beta > 0;
  plan.use[kShuffled] = p.gamma > 0;
  plan.k = plan.use[kShuffled] ? p.k : 0;
  plan.grads = p.grads;
  for (int t = 0; t < kInputs; ++t) plan.grad[t] = p.grads && plan.use[t] && want[t];

  // Walk splits: enough CTAs (about 256 per launch) when B is small, never for B > 8192;
  // their gradient slices are capped at 512 MiB. Depends on B and D only.
  plan.nblocks = static_cast<int>(plan.bp / kBlockRows);
  int nsplit = std::max(1, std::min(plan.nblocks, 64 / plan.nblocks));
  const double slice_bytes = static_cast<double>(plan.bp) * plan.dp * sizeof(float);
  while (nsplit > 1 && (nsplit - 1) * slice_bytes * 4 > 512.0 * (1 << 20)) --nsplit;
  plan.per_split = (plan.nblocks + nsplit - 1) / nsplit;
  plan.nsplit = (plan.nblocks + plan.per_split - 1) / plan.per_split;
  plan.version = choose_tile_version(plan.precision);
  return plan;
}

void LossWorkspace::prepare(const LossPlan& plan, bool with_labels, bool normalize) {
  const int64_t bp = plan.bp, dp = plan.dp;
  for (int t = 0; t < kInputs; ++t) {
    if (!plan.use[t]) continue;
    hat[t].ensure(f32(plan.rows_alloc(t) * dp), "normalized inputs");
    if (normalize) norm[t].ensure(f32(plan.rows_alloc(t)), "row norms");
    if (t != kShuffled && plan.precision == Precision::Bf16)
      hat16[t].ensure(static_cast<size_t>(bp * dp) * 2, "bf16 copies of the inputs");
  }
  if (with_labels) labels.ensure(static_cast<size_t>(bp) * sizeof(int32_t), "labels");
  margin.ensure(f32(bp), "margins");
  part_max.ensure(f32(4 * plan.nsplit * bp), "log-sum-exp partials");
  part_sum.ensure(f32(4 * plan.nsplit * bp), "log-sum-exp partials");
  others.ensure(static_cast<size_t>(4 * bp) * sizeof(math::LseState), "log-sum-exp statistics");
  lse.ensure(f32(4 * bp), "log-sum-exps");
  pos.ensure(f32(3 * bp), "positive logits");
  positive_grad.ensure(f32(3 * bp), "positive gradients");
  if (plan.use[kShuffled]) {
    ms_logits.ensure(f64(plan.batch * plan.k), "shuffled logits");
    ms_rows.ensure(static_cast<size_t>(bp) * sizeof(math::MsRow), "MS soft-maxes");
  }
  row_values.ensure(f64(kRowValues * bp), "per-row values");
  sums.ensure(f64(kRowValues), "sums");
  if (plan.grads) {
    dtau_tiles.ensure(static_cast<size_t>(plan.nsplit) * plan.nblocks * sizeof(double), "dL/dtau partials");
    if (plan.nsplit > 1) {
      const int owners[4] = {kQuery, kFused, kVisual, kText};
      for (int j = 0; j < 4; ++j)
        if (plan.grad[owners[j]]) partials[j].ensure(f32((plan.nsplit - 1) * bp * dp), "gradient partials");
    }
  }
}

size_t LossWorkspace::bytes() const {
  size_t n = labels.bytes() + margin.bytes() + part_max.bytes() + part_sum.bytes() + others.bytes() + lse.bytes() +
             pos.bytes() + positive_grad.bytes() + ms_logits.bytes() + ms_rows.bytes() + row_values.bytes() +
             sums.bytes() + dtau_tiles.bytes();
  for (int t = 0; t < kInputs; ++t) n += hat[t].bytes() + norm[t].bytes() + grad_out[t].bytes();
  for (int t = 0; t < 4; ++t) n += hat16[t].bytes() + partials[t].bytes();
  return n;
}

// ---------------------------------------------------------------------------
// The loss on device memory.

void loss_on_device(LossOutputs& out, const DeviceIO& io, const LossParams& p, const LossPlan& plan,
                    LossWorkspace& ws, cudaStream_t stream) {
  const int64_t B = plan.batch, K = plan.k, bp = plan.bp, dp = plan.dp;
  const bool bf16 = plan.precision == Precision::Bf16;
  const bool use_ms = plan.use[kShuffled];
  const double inv_b = 1.0 / static_cast<double>(B);
  const double inv_tau = 1.0 / p.temperature;

  // ---- normalise (x^ in fp32, plus bf16 copies) -------------------------------------
  for (int t = 0; t < kInputs; ++t) {
    if (!plan.use[t]) continue;
    normalize_rows_forward(ws.hat[t].as<float>(), p.normalize ? ws.norm[t].as<float>() : nullptr,
                           (bf16 && t != kShuffled) ? ws.hat16[t].as<__nv_bfloat16>() : nullptr, io.input[t],
                           plan.rows(t), plan.rows_alloc(t), plan.dim, dp, p.normalize, stream);
  }
  const int32_t* labels = nullptr;
  if (p.labels) {
    CUDA_CHECK(cudaMemcpyAsync(ws.labels.as<int32_t>(), p.labels, B * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    labels = ws.labels.as<int32_t>();
  }
  float* margin = ws.margin.as<float>();
  if (p.margin_per_row) {
    CUDA_CHECK(cudaMemcpyAsync(margin, p.margin_per_row, f32(B), cudaMemcpyHostToDevice, stream));
  } else {
    fill_kernel<<<grid_for(B, 256 * 4), 256, 0, stream>>>(margin, static_cast<float>(p.margin), B);
    CUDA_CHECK_LAUNCH();
  }

  // Operands of the tile products: fp32 x^ (fp32, tf32) or the bf16 copies.
  const auto operand = [&](int t) -> const void* {
    return bf16 ? static_cast<const void*>(ws.hat16[t].as<__nv_bfloat16>()) : static_cast<const void*>(ws.hat[t].as<float>());
  };
  float* lse = ws.lse.as<float>();
  float* pos = ws.pos.as<float>();
  float* positive_grad = ws.positive_grad.as<float>();
  math::LseState* others = ws.others.as<math::LseState>();
  const auto lse_of = [&](int slot) { return lse + slot * bp; };
  const auto positive_grad_of = [&](int slot) { return positive_grad + slot * bp; };

  TileArgs base;
  base.batch = B;
  base.bp = bp;
  base.pitch = dp;
  base.slice = bp * dp;
  base.nblocks = plan.nblocks;
  base.nsplit = plan.nsplit;
  base.per_split = plan.per_split;
  base.inv_tau = static_cast<float>(inv_tau);
  base.labels = labels;
  base.margin = margin;

  // ---- statistics (of the entries other than the positives) --------------------------
  {
    TileArgs args = base;
    MergeArgs merge;
    merge.nsplit = plan.nsplit;
    merge.batch = B;
    merge.bp = bp;
    const auto add = [&](int slot, int own, int walk, bool fused, float* positive) {
      TileJob& job = args.job[args.njobs];
      job.nterms = 1;
      job.term[0].own = operand(own);
      job.term[0].walk = operand(walk);
      job.term[0].margin = fused ? 1 : 0;
      job.part_max = ws.part_max.as<float>() + static_cast<int64_t>(slot) * plan.nsplit * bp;
      job.part_sum = ws.part_sum.as<float>() + static_cast<int64_t>(slot) * plan.nsplit * bp;
      job.positive = positive;
      merge.part_max[args.njobs] = job.part_max;
      merge.part_sum[args.njobs] = job.part_sum;
      merge.others[args.njobs] = others + slot * bp;
      ++args.njobs;
    };
    add(kSlotF, kQuery, kFused, true, pos + kSlotF * bp);
    if (plan.use[kVisual]) add(kSlotV, kQuery, kVisual, false, pos + kSlotV * bp);
    if (plan.use[kText]) add(kSlotT, kQuery, kText, false, pos + kSlotT * bp);
    add(kSlotCol, kFused, kQuery, true, nullptr);
    merge.njobs = args.njobs;
    launch_lse_tiles(args, plan.precision, plan.version, plan.tf32_split, stream);
    launch_lse_merge(merge, stream);
  }

  // ---- the MS term, then every row's losses, log-sum-exps and positive gradients ------
  math::MsRow* ms_rows = use_ms ? ws.ms_rows.as<math::MsRow>() : nullptr;
  double* ms_logits = use_ms ? ws.ms_logits.as<double>() : nullptr;
  if (use_ms) {
    MsForwardArgs a;
    a.qhat = ws.hat[kQuery].as<float>();
    a.shat = ws.hat[kShuffled].as<float>();
    a.positive = pos + kSlotF * bp;
    a.pitch = dp;
    a.batch = B;
    a.k = K;
    a.inv_tau = inv_tau;
    a.logits = ms_logits;
    a.rows = ms_rows;
    launch_ms_forward(a, stream);
  }
  double* row_values = ws.row_values.as<double>();
  {
    FinishRowsArgs a;
    a.others = others;
    a.pos = pos;
    a.ms = ms_rows;
    a.use_v = plan.use[kVisual];
    a.use_t = plan.use[kText];
    a.batch = B;
    a.bp = bp;
    a.inv_b = inv_b;
    a.alpha = p.alpha;
    a.beta = p.beta;
    a.gamma = p.gamma;
    a.lse = lse;
    a.positive_grad = positive_grad;
    a.row_values = row_values;
    finish_rows_kernel<<<grid_for(bp, 256 * 4), 256, 0, stream>>>(a);
    CUDA_CHECK_LAUNCH();
  }
  double* sums = ws.sums.as<double>();
  sum_rows_kernel<<<1, kSumThreads, 0, stream>>>(sums, row_values, kRowMs + 1, bp, B);
  CUDA_CHECK_LAUNCH();

  // ---- gradients ---------------------------------------------------------------------
  if (plan.grads) {
    const float scale_f = static_cast<float>(inv_b);
    const float scale_v = static_cast<float>(p.alpha * inv_b);
    const float scale_t = static_cast<float>(p.beta * inv_b);
    for (int t = 0; t < kInputs; ++t)
      if (plan.grad[t]) CUDA_CHECK(cudaMemsetAsync(io.grad[t], 0, f32(plan.rows_alloc(t) * dp), stream));

    TileArgs args = base;
    int grad_input[kMaxJobs] = {};
    const auto term = [&](TileJob& job, int own, int walk, const float* lse_own, const float* lse_walk, int slot,
                          float scale, bool fused) {
      TileTerm& tt = job.term[job.nterms++];
      tt.own = operand(own);
      tt.walk = operand(walk);
      tt.lse_own = lse_own;
      tt.lse_walk = lse_walk;
      tt.positive_grad = positive_grad_of(slot);
      tt.scale = scale;
      tt.margin = fused ? 1 : 0;
    };
    const auto job_for = [&](int input, int partial_slot) -> TileJob& {
      TileJob& job = args.job[args.njobs];
      grad_input[args.njobs] = input;
      ++args.njobs;
      if (plan.grad[input]) {
        job.grad = io.grad[input];
        job.grad_partials = plan.nsplit > 1 ? ws.partials[partial_slot].as<float>() : nullptr;
      }
      return job;
    };
    {  // dQ^ (row-owned): every term; also sum G z for dL/dtau.
      TileJob& job = job_for(kQuery, 0);
      job.dtau = ws.dtau_tiles.as<double>();
      term(job, kQuery, kFused, lse_of(kSlotF), lse_of(kSlotCol), kSlotF, scale_f, true);
      if (plan.use[kVisual]) term(job, kQuery, kVisual, lse_of(kSlotV), nullptr, kSlotV, scale_v, false);
      if (plan.use[kText]) term(job, kQuery, kText, lse_of(kSlotT), nullptr, kSlotT, scale_t, false);
    }
    if (plan.grad[kFused]) {  // dM^ = G^T Q^: own = M^, the row lse is the walked side.
      TileJob& job = job_for(kFused, 1);
      term(job, kFused, kQuery, lse_of(kSlotCol), lse_of(kSlotF), kSlotF, scale_f, true);
    }
    if (plan.grad[kVisual]) {
      TileJob& job = job_for(kVisual, 2);
      term(job, kVisual, kQuery, nullptr, lse_of(kSlotV), kSlotV, scale_v, false);
    }
    if (plan.grad[kText]) {
      TileJob& job = job_for(kText, 3);
      term(job, kText, kQuery, nullptr, lse_of(kSlotT), kSlotT, scale_t, false);
    }
    const int slot_of[kInputs] = {0, 1, 2, 3, 0};
    for (int j = 0; j < args.njobs; ++j) {
      const int in = grad_input[j];
      if (plan.grad[in] && plan.nsplit > 1)
        CUDA_CHECK(cudaMemsetAsync(ws.partials[slot_of[in]].as<float>(), 0, f32((plan.nsplit - 1) * bp * dp), stream));
    }
    launch_grad_tiles(args, plan.precision, plan.version, plan.tf32_split, stream);
    for (int j = 0; j < args.njobs; ++j) {
      const int in = grad_input[j];
      if (plan.grad[in] && plan.nsplit > 1)
        launch_sum_slices(io.grad[in], ws.partials[slot_of[in]].as<float>(), plan.nsplit - 1, bp * dp, bp * dp, stream);
    }

    if (use_ms) {  // the K negatives (the positive's share is on the fused diagonal)
      MsBackwardArgs a;
      a.qhat = ws.hat[kQuery].as<float>();
      a.shat = ws.hat[kShuffled].as<float>();
      a.pitch = dp;
      a.batch = B;
      a.k = K;
      a.logits = ms_logits;
      a.rows = ms_rows;
      a.gamma_over_b = p.gamma * inv_b;
      a.dq = plan.grad[kQuery] ? io.grad[kQuery] : nullptr;
      a.ds = plan.grad[kShuffled] ? io.grad[kShuffled] : nullptr;
      a.gz = row_values + kRowGzMs * bp;
      launch_ms_backward(a, stream);
      sum_rows_kernel<<<1, kSumThreads, 0, stream>>>(sums + kRowGzMs, row_values + kRowGzMs * bp, 1, bp, B);
      CUDA_CHECK_LAUNCH();
    }
    for (int t = 0; t < kInputs; ++t)
      if (plan.grad[t])
        normalize_rows_backward(io.grad[t], ws.hat[t].as<float>(), p.normalize ? ws.norm[t].as<float>() : nullptr,
                                plan.rows(t), plan.dim, dp, static_cast<float>(inv_tau), p.normalize, stream);
  }

  // ---- scalars -----------------------------------------------------------------------
  double host_sums[kRowValues] = {};
  std::vector<double> dtau_tiles(plan.grads ? static_cast<size_t>(plan.nsplit) * plan.nblocks : 0);
  CUDA_CHECK(cudaMemcpyAsync(host_sums, sums, sizeof(host_sums), cudaMemcpyDeviceToHost, stream));
  if (plan.grads)
    CUDA_CHECK(cudaMemcpyAsync(dtau_tiles.data(), ws.dtau_tiles.as<double>(), dtau_tiles.size() * sizeof(double),
                               cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));

  LossSums total;  // the same finishing as the CPU backend's (finish_scalars)
  total.qm = host_sums[kRowQm];
  total.mq = host_sums[kRowMq];
  total.v = plan.use[kVisual] ? host_sums[kRowV] : 0.0;
  total.t = plan.use[kText] ? host_sums[kRowT] : 0.0;
  total.ms = use_ms ? host_sums[kRowMs] : 0.0;
  if (plan.grads) {  // tiles in (split, block) order, then the MS term: a fixed order
    for (double v : dtau_tiles) total.gz += v;
    if (use_ms) total.gz += host_sums[kRowGzMs];
  }
  finish_scalars(out, total, p);
  out.backend_used = Backend::Cuda;
  out.precision_used = plan.precision;
}

// ---------------------------------------------------------------------------
// The host API: upload -> loss_on_device -> download.

void loss(LossOutputs& out, const LossParams& p) {
  const float* inputs[kInputs] = {p.query, p.fused, p.visual, p.text, p.shuffled};
  float* outputs[kInputs] = {out.d_query, out.d_fused, out.d_visual, out.d_text, out.d_shuffled};
  bool want[kInputs];
  for (int t = 0; t < kInputs; ++t) want[t] = outputs[t] != nullptr;
  const LossPlan plan = make_plan(p, want);

  LossWorkspace ws;  // declared before the stream: the stream is waited for before freeing
  Stream stream;
  ws.prepare(plan, p.labels != nullptr, p.normalize);
  DeviceIO io;
  const int64_t D = plan.dim, dp = plan.dp;
  for (int t = 0; t < kInputs; ++t) {
    if (!plan.use[t]) continue;
    // Uploaded straight into the normalised-rows buffer, normalised there in place.
    float* dst = ws.hat[t].as<float>();
    CUDA_CHECK(cudaMemcpy2DAsync(dst, f32(dp), inputs[t], f32(D), f32(D), static_cast<size_t>(plan.rows(t)),
                                 cudaMemcpyHostToDevice, stream.get()));
    io.input[t] = dst;
    if (plan.grad[t]) {
      ws.grad_out[t].ensure(f32(plan.rows_alloc(t) * dp), "gradients");
      io.grad[t] = ws.grad_out[t].as<float>();
    }
  }
  loss_on_device(out, io, p, plan, ws, stream.get());

  if (p.grads) {
    for (int t = 0; t < kInputs; ++t) {
      if (!outputs[t]) continue;
      const int64_t rows = t == kShuffled ? p.batch * p.k : p.batch;
      if (plan.grad[t]) {
        CUDA_CHECK(cudaMemcpy2DAsync(outputs[t], f32(D), io.grad[t], f32(dp), f32(D), static_cast<size_t>(rows),
                                     cudaMemcpyDeviceToHost, stream.get()));
      } else {
        std::memset(outputs[t], 0, f32(rows * D));  // given with weight 0: zero gradient
      }
    }
    stream.sync();
  }
}

}  // namespace mbvr::cuda
