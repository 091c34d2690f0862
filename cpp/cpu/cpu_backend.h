// The CPU backend: the readable reference implementation of the core interface
// (../mbvr.h). cpp/cuda/cuda_backend.h declares the same functions for the GPU, and the
// files of the two folders mirror each other (loss, similarity, normalize).
// Inputs reaching these functions have been validated by mbvr::validate.
#pragma once

#include "../mbvr.h"

namespace mbvr::cpu {

void loss(LossOutputs& out, const LossParams& p);
void similarity(float* out, const SimilarityParams& p);
void shuffled_logits(float* out, const ShuffledLogitsParams& p);
CpuInfo info();

}  // namespace mbvr::cpu
