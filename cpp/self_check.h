// The CUDA self-check: the first CUDA use in a process (cuda::info()) runs one small
// fixed problem through the device and through the CPU backend and compares them within
// each precision's bound (docs/math.md §5). A GPU whose kernels disagree is reported
// unavailable, with the measured error as the reason: 'auto' then runs on the CPU and
// backend 'cuda' throws that reason (choose_backend).
//
// The problem has what breaks kernels: labels with duplicates, per-row margins, K = 2,
// sizes just past the CUDA tiles (B = 130 > 128 rows, D = 72 > 64 columns), tau = 0.01
// and positives close to their queries (confident soft-maxes, where a positive kept
// inside its log-sum-exp loses its gradient to cancellation).
#pragma once

#include <functional>
#include <string>

#include "mbvr.h"

namespace mbvr {

using LossFunction = std::function<void(LossOutputs&, const LossParams&)>;

struct SelfCheckResult {
  bool passed = true;
  double worst_ratio = 0;  // the largest error / bound over every output and precision
  std::string worst;       // "grads.fused at tf32: relative error 3.1e-01 (bound 2e-03)"
  double seconds = 0;      // the check's wall time (device runs and CPU runs)
};

// Runs the fixed problem through `device` at fp32, tf32 and bf16 and through the CPU
// backend at fp32, and compares loss, terms, every gradient and dL/dtau. A device that
// throws fails the check (its message in `worst`).
SelfCheckResult self_check(const LossFunction& device);

// A failed check makes CUDA unavailable, its reason the measured error.
void apply_self_check(CudaInfo& info, const SelfCheckResult& check);

}  // namespace mbvr
