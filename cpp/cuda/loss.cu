// MBVR loss and gradients on the GPU (SPEC section 2), in O(B*D) memory: the same
// algorithm as cpu/loss.cpp, with the tile loops turned into grids.
//
//   normalise      one warp per row; x^ in fp32 (and a bf16 copy for bf16)
//   statistics     lse_tiles: row log-sum-exps of L_qm, L_v, L_t (own = Q^) and the
//                  column log-sum-exps of L_mq (own = M^, the transposed problem),
//                  recomputing each 128 x 128 logit tile on the fly; lse_merge
//   MS term        row_terms: K dot products per row, lse over (z_ii, zs_i.), per-row
//                  loss values; sum_rows adds them in a fixed order
//   gradients      grad_tiles: recompute each tile, G = dL/dz, then
//                  dQ^ += G X^ (row-owned, also sum G z) and dX^ += G^T Q^ (column-owned,
//                  as rows of the transposed problem): no atomics; split partials summed
//                  in split order; ms_backward; normalisation backward with 1/tau
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

enum Slot { kSlotF = 0, kSlotV = 1, kSlotT = 2, kSlotCol = 3 };

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
  lse.ensure(f32(4 * bp), "log-sum-exps");
  pos.ensure(f32(3 * bp), "positive logits");
  if (plan.use[kShuffled]) {
    zs.ensure(f32(plan.batch * plan.k), "shuffled logits");
    lse_ms.ensure(static_cast<size_t>(bp) * sizeof(double), "MS log-sum-exps");
  }
  row_values.ensure(f32(kRowValues * bp), "per-row values");
  sums.ensure(8 * sizeof(double), "sums");
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
  size_t n = labels.bytes() + margin.bytes() + part_max.bytes() + part_sum.bytes() + lse.bytes() + pos.bytes() +
             zs.bytes() + lse_ms.bytes() + row_values.bytes() + sums.bytes() + dtau_tiles.bytes();
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
  const auto lse_of = [&](int slot) { return lse + slot * bp; };

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

  // ---- statistics --------------------------------------------------------------------
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
      merge.lse[args.njobs] = lse_of(slot);
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

  // ---- MS term and per-row loss values -----------------------------------------------
  float* row_values = ws.row_values.as<float>();
  {
    RowTermsArgs a;
    a.qhat = ws.hat[kQuery].as<float>();
    a.shat = use_ms ? ws.hat[kShuffled].as<float>() : nullptr;
    a.pitch = dp;
    a.batch = B;
    a.k = K;
    a.bp = bp;
    a.pos_f = pos + kSlotF * bp;
    a.pos_v = pos + kSlotV * bp;
    a.pos_t = pos + kSlotT * bp;
    a.lse_f = lse_of(kSlotF);
    a.lse_col = lse_of(kSlotCol);
    a.lse_v = plan.use[kVisual] ? lse_of(kSlotV) : nullptr;
    a.lse_t = plan.use[kText] ? lse_of(kSlotT) : nullptr;
    a.inv_tau = inv_tau;
    a.zs = use_ms ? ws.zs.as<float>() : nullptr;
    a.lse_ms = use_ms ? ws.lse_ms.as<double>() : nullptr;
    a.row_values = row_values;
    launch_row_terms(a, stream);
  }
  double* sums = ws.sums.as<double>();
  launch_sum_rows(sums, row_values, kRowMs + 1, bp, B, stream);

  // ---- gradients ---------------------------------------------------------------------
  if (plan.grads) {
    const float scale_f = static_cast<float>(inv_b);
    const float scale_v = static_cast<float>(p.alpha * inv_b);
    const float scale_t = static_cast<float>(p.beta * inv_b);
    for (int t = 0; t < kInputs; ++t)
      if (plan.grad[t]) CUDA_CHECK(cudaMemsetAsync(io.grad[t], 0, f32(plan.rows_alloc(t) * dp), stream));

    TileArgs args = base;
    int grad_input[kMaxJobs] = {};
    const auto term = [&](TileJob& job, int own, int walk, const float* lse_own, const float* lse_walk, float scale,
                          float ndir, bool fused) {
      TileTerm& tt = job.term[job.nterms++];
      tt.own = operand(own);
      tt.walk = operand(walk);
      tt.lse_own = lse_own;
      tt.lse_walk = lse_walk;
      tt.scale = scale;
      tt.ndir = ndir;
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
      term(job, kQuery, kFused, lse_of(kSlotF), lse_of(kSlotCol), scale_f, 2.0f, true);
      if (plan.use[kVisual]) term(job, kQuery, kVisual, lse_of(kSlotV), nullptr, scale_v, 1.0f, false);
      if (plan.use[kText]) term(job, kQuery, kText, lse_of(kSlotT), nullptr, scale_t, 1.0f, false);
    }
    if (plan.grad[kFused]) {  // dM^ = G^T Q^: own = M^, the row lse is the walked side.
      TileJob& job = job_for(kFused, 1);
      term(job, kFused, kQuery, lse_of(kSlotCol), lse_of(kSlotF), scale_f, 2.0f, true);
    }
    if (plan.grad[kVisual]) {
      TileJob& job = job_for(kVisual, 2);
      term(job, kVisual, kQuery, nullptr, lse_of(kSlotV), scale_v, 1.0f, false);
    }
    if (plan.grad[kText]) {
      TileJob& job = job_for(kText, 3);
      term(job, kText, kQuery, nullptr, lse_of(kSlotT), scale_t, 1.0f, false);
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

    if (use_ms) {
      MsBackwardArgs a;
      a.qhat = ws.hat[kQuery].as<float>();
      a.mhat = ws.hat[kFused].as<float>();
      a.shat = ws.hat[kShuffled].as<float>();
      a.pitch = dp;
      a.batch = B;
      a.k = K;
      a.bp = bp;
      a.pos_f = pos + kSlotF * bp;
      a.zs = ws.zs.as<float>();
      a.lse_ms = ws.lse_ms.as<double>();
      a.gamma_over_b = static_cast<float>(p.gamma * inv_b);
      a.dq = plan.grad[kQuery] ? io.grad[kQuery] : nullptr;
      a.dm = plan.grad[kFused] ? io.grad[kFused] : nullptr;
      a.ds = plan.grad[kShuffled] ? io.grad[kShuffled] : nullptr;
      a.row_values = row_values;
      launch_ms_backward(a, stream);
      launch_sum_rows(sums + kRowDtauMs, row_values + kRowDtauMs * bp, 1, bp, B, stream);
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

  LossTerms& terms = out.terms;
  terms.qm = host_sums[kRowQm] * inv_b;
  terms.mq = host_sums[kRowMq] * inv_b;
  terms.v = plan.use[kVisual] ? host_sums[kRowV] * inv_b : 0.0;
  terms.t = plan.use[kText] ? host_sums[kRowT] * inv_b : 0.0;
  terms.ms = use_ms ? host_sums[kRowMs] * inv_b : 0.0;
  out.loss = terms.qm + terms.mq + p.alpha * terms.v + p.beta * terms.t + p.gamma * terms.ms;
  out.d_temperature = 0.0;
  if (plan.grads) {
    double dtau = 0.0;  // tiles in (split, block) order, then the MS term: fixed order
    for (double v : dtau_tiles) dtau += v;
    if (use_ms) dtau += host_sums[kRowDtauMs];
    out.d_temperature = -dtau * inv_tau;
  }
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
