// The CUDA loss on device memory, shared by the host API (cuda::loss: upload -> run ->
// download) and the device-resident API (device_tensors.h: run on matrices already on
// the GPU, gradients left there).
#pragma once

#include <cstdint>

#include "common.cuh"
#include "ms_term.cuh"
#include "softmax_tiles.cuh"

namespace mbvr::cuda {

enum InputIndex { kQuery = 0, kFused, kVisual, kText, kShuffled, kInputs };

// Per-row values (doubles), rows of the row_values array ([kRowValues][bp]): the loss of
// each term per row (L_mq: per document), and the MS negatives' sum of g * z.
enum RowValue { kRowQm = 0, kRowMq, kRowV, kRowT, kRowMs, kRowGzMs, kRowValues };

// Sizes and choices of one call, fixed before anything is allocated.
struct LossPlan {
  int64_t batch = 0, dim = 0, k = 0;  // B, D, K (K = 0 without the MS term)
  int64_t bp = 0, dp = 0;             // padded B, padded D (= the row pitch)
  int nblocks = 0, nsplit = 1, per_split = 1;
  Precision precision = Precision::Fp32;  // of the tile engine (choose_tile_math)
  int version = 1;                    // tile kernel version (softmax_tiles.cuh)
  bool tf32_split = false;            // tf32 logits in 3xTF32 (choose_tile_math)
  bool use[kInputs] = {};             // the input takes part (its weight is > 0)
  bool grad[kInputs] = {};            // its gradient is computed
  bool grads = false;                 // params.grads: gradients and dL/dtau at all
  int64_t rows(int t) const { return t == kShuffled ? batch * k : batch; }
  int64_t rows_alloc(int t) const { return t == kShuffled ? padded_rows(batch * k) : bp; }
};

// want[t]: the caller wants the gradient of input t (an output buffer exists).
LossPlan make_plan(const LossParams& p, const bool want[kInputs]);

// Device scratch of the loss; buffers only grow, so a session reuses them call after call.
struct LossWorkspace {
  DeviceBuffer hat[kInputs];    // normalised rows, fp32, pitch dp
  DeviceBuffer hat16[4];        // bf16 copies of Q^, M^, V^, T^ (bf16 precision only)
  DeviceBuffer norm[kInputs];   // ||x|| per row
  DeviceBuffer labels, margin;  // B int32 labels; B per-row margins
  DeviceBuffer part_max, part_sum;  // [4 jobs][nsplit][bp] log-sum-exp partials (others)
  DeviceBuffer others;          // [4][bp] LseState: rows of L_qm, L_v, L_t; columns of L_mq
  DeviceBuffer lse;             // [4][bp] the full log-sum-exps, for the gradient tiles
  DeviceBuffer pos;             // [3][bp]: z_ii of the fused, visual, text terms
  DeviceBuffer positive_grad;   // [3][bp]: their dL/dz (fused: with the MS share)
  DeviceBuffer ms_logits, ms_rows;  // B x K zs (double), B MsRow
  DeviceBuffer row_values;      // [kRowValues][bp] doubles
  DeviceBuffer sums;            // kRowValues doubles
  DeviceBuffer dtau_tiles;      // [nsplit][nblocks] doubles
  DeviceBuffer partials[4];     // gradient slices of walk splits >= 1, per gradient job
  DeviceBuffer grad_out[kInputs];  // host API only: gradients before download

  void prepare(const LossPlan& plan, bool labels, bool normalize);
  size_t bytes() const;
};

// Device pointers of one call, all in the padded layout (pitch plan.dp): inputs with
// at least rows_alloc(t) rows (zero padding not required), gradients with rows_alloc(t)
// rows, written with `=` (null where plan.grad[t] is false).
struct DeviceIO {
  const float* input[kInputs] = {};
  float* grad[kInputs] = {};
};

// Runs the loss; fills out's scalars (loss, terms, d_temperature, backend_used). Returns
// after the stream has finished. p supplies options, labels and margin_per_row (host).
void loss_on_device(LossOutputs& out, const DeviceIO& io, const LossParams& p, const LossPlan& plan,
                    LossWorkspace& ws, cudaStream_t stream);

}  // namespace mbvr::cuda
