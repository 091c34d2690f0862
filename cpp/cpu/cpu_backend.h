// The CPU backend of the core interface (../mbvr.h). cpp/cuda/cuda_backend.h declares the
// same functions for the GPU; the files of the two folders mirror each other (loss,
// softmax_tiles, ms_term, normalize, similarity) on the shared math of ../loss_math.h.
// Inputs reaching these functions have passed mbvr.cpp's size checks.
#pragma once

#include "../mbvr.h"

namespace mbvr::cpu {

void loss(LossOutputs& out, const LossParams& p);
void similarity(float* out, const SimilarityParams& p);
void shuffled_logits(float* out, const ShuffledLogitsParams& p);
CpuInfo info();

}  // namespace mbvr::cpu
