// Placeholder until the CUDA kernels land (issue: CUDA backend).
#include "cuda_backend.h"

namespace mbvr::cuda {
void loss(LossOutputs&, const LossParams&) {
  throw Error(ErrorKind::Generic, "The CUDA loss kernels are not implemented yet; use backend: 'cpu'");
}
void similarity(float*, const SimilarityParams&) {
  throw Error(ErrorKind::Generic, "The CUDA similarity kernel is not implemented yet; use backend: 'cpu'");
}
void shuffled_logits(float*, const ShuffledLogitsParams&) {
  throw Error(ErrorKind::Generic, "The CUDA shuffled-logits kernel is not implemented yet; use backend: 'cpu'");
}
}  // namespace mbvr::cuda
