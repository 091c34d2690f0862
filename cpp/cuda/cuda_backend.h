// The CUDA backend: the same functions as cpp/cpu/cpu_backend.h, on the GPU.
// Built from the .cu files of this folder when CMake finds nvcc; otherwise
// cpp/cuda_disabled.cpp supplies info() saying so, and the other functions throw.
#pragma once

#include "../mbvr.h"

namespace mbvr::cuda {

CudaInfo info();
void loss(LossOutputs& out, const LossParams& p);
void similarity(float* out, const SimilarityParams& p);
void shuffled_logits(float* out, const ShuffledLogitsParams& p);

}  // namespace mbvr::cuda
