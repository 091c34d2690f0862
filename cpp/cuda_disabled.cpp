// Stands in for the CUDA backend when the addon is built without nvcc.
#include "cuda/cuda_backend.h"
#include "cuda/device_tensors.h"

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

// The device-resident API: nothing can be created without CUDA.
PinnedBuffer::PinnedBuffer(int64_t) { unavailable(); }
PinnedBuffer::~PinnedBuffer() = default;
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  ptr_ = o.ptr_;
  size_ = o.size_;
  o.ptr_ = nullptr;
  o.size_ = 0;
  return *this;
}
DeviceMatrix::DeviceMatrix(int64_t, int64_t) { unavailable(); }
DeviceMatrix::~DeviceMatrix() = default;
void DeviceMatrix::upload(const float*) { unavailable(); }
void DeviceMatrix::download(float*) const { unavailable(); }
struct LossSession::Impl {};
LossSession::LossSession() { unavailable(); }
LossSession::~LossSession() = default;
void LossSession::loss(LossOutputs&, const DeviceLossInputs&, const DeviceLossGrads&, const LossParams&) {
  unavailable();
}
size_t LossSession::workspace_bytes() const { return 0; }

}  // namespace mbvr::cuda
