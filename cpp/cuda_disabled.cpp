// Stands in for the CUDA backend when the addon is built without nvcc.
#include "cuda/cuda_backend.h"

namespace mbvr::cuda {
namespace {
[[noreturn]] void unavailable() {
  throw Error(ErrorKind::Generic, "The CUDA backend is unavailable: " + info().reason);
}
}  // namespace

CudaInfo info() {
  CudaInfo i;
  i.compiled = false;
  i.available = false;
  i.reason =
      "this build of mbvr was compiled without CUDA (nvcc was not found). Install the CUDA "
      "toolkit and rebuild: `npm rebuild mbvr` (or `npx cmake-js rebuild` in the package)";
  return i;
}
void loss(LossOutputs&, const LossParams&) { unavailable(); }
void similarity(float*, const SimilarityParams&) { unavailable(); }
void shuffled_logits(float*, const ShuffledLogitsParams&) { unavailable(); }

}  // namespace mbvr::cuda
