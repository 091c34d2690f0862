// Device memory for the CUDA backend: allocation with clear out-of-memory errors, and
// the device-resident API of device_tensors.h.
#include "device_tensors.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "loss_core.cuh"

namespace mbvr::cuda {

namespace {

std::string mib(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

size_t f32(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

// Makes `device` current for the lifetime of the guard, then restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------
// Allocation.

void throw_out_of_memory(size_t bytes, const char* what) {
  cudaGetLastError();  // an allocation failure is not sticky: clear it for the next call
  size_t free_bytes = 0, total_bytes = 0;
  std::string detail;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
    detail = " (" + mib(free_bytes) + " free of " + mib(total_bytes) + ")";
  cudaGetLastError();
  throw Error(ErrorKind::Generic, "GPU out of memory: could not allocate " + mib(bytes) + " for " + what + detail +
                                      "; use a smaller batch, or backend: 'cpu'");
}

void* device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) throw_out_of_memory(bytes, what);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
  }
  return p;
}

// ---------------------------------------------------------------------------
// PinnedBuffer.

PinnedBuffer::PinnedBuffer(int64_t floats) {
  if (floats <= 0) return;
  void* p = nullptr;
  const cudaError_t err = cudaMallocHost(&p, f32(floats));
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorKind::Generic, "Could not allocate " + mib(f32(floats)) + " of page-locked host memory: " +
                                        cudaGetErrorString(err));
  }
  ptr_ = static_cast<float*>(p);
  size_ = floats;
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) {
  o.ptr_ = nullptr;
  o.size_ = 0;
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = o.ptr_;
    size_ = o.size_;
    o.ptr_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

// ---------------------------------------------------------------------------
// DeviceMatrix.

DeviceMatrix::DeviceMatrix(int64_t rows, int64_t dim) {
  if (rows < 1) throw bad_argument(ErrorKind::Range, "rows", "must be >= 1");
  if (dim < 1) throw bad_argument(ErrorKind::Range, "dim", "must be >= 1");
  rows_ = rows;
  dim_ = dim;
  pitch_ = cuda::padded_dim(dim);
  padded_rows_ = cuda::padded_rows(rows);
  data_ = static_cast<float*>(device_alloc(f32(padded_rows_ * pitch_), "a device matrix"));
  fill_zero();
}

DeviceMatrix::~DeviceMatrix() {
  if (data_) cudaFree(data_);
}

DeviceMatrix::DeviceMatrix(DeviceMatrix&& o) noexcept
    : data_(o.data_), rows_(o.rows_), dim_(o.dim_), pitch_(o.pitch_), padded_rows_(o.padded_rows_) {
  o.data_ = nullptr;
  o.rows_ = o.dim_ = o.pitch_ = o.padded_rows_ = 0;
}

DeviceMatrix& DeviceMatrix::operator=(DeviceMatrix&& o) noexcept {
  if (this != &o) {
    if (data_) cudaFree(data_);
    data_ = o.data_;
    rows_ = o.rows_;
    dim_ = o.dim_;
    pitch_ = o.pitch_;
    padded_rows_ = o.padded_rows_;
    o.data_ = nullptr;
    o.rows_ = o.dim_ = o.pitch_ = o.padded_rows_ = 0;
  }
  return *this;
}

// The copies run on the legacy default stream, which does not order against the
// session's non-blocking stream, and a pageable upload or a memset may return before it
// lands: each operation waits for the default stream before it returns.
void DeviceMatrix::upload(const float* host) {
  if (!data_) return;
  CUDA_CHECK(cudaMemcpy2D(data_, f32(pitch_), host, f32(dim_), f32(dim_), static_cast<size_t>(rows_),
                          cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

void DeviceMatrix::download(float* host) const {
  if (!data_) return;
  CUDA_CHECK(cudaMemcpy2D(host, f32(dim_), data_, f32(pitch_), f32(dim_), static_cast<size_t>(rows_),
                          cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

void DeviceMatrix::copy_from_device(const float* src, int64_t src_pitch) {
  if (!data_) return;
  CUDA_CHECK(cudaMemcpy2D(data_, f32(pitch_), src, f32(src_pitch), f32(dim_), static_cast<size_t>(rows_),
                          cudaMemcpyDeviceToDevice));
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

void DeviceMatrix::fill_zero() {
  if (!data_) return;
  CUDA_CHECK(cudaMemset(data_, 0, f32(padded_rows_ * pitch_)));
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

// ---------------------------------------------------------------------------
// LossSession.

struct LossSession::Impl {
  int device = 0;
  LossWorkspace ws;  // before the stream: the stream is waited for before freeing
  Stream stream;
};

LossSession::LossSession() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  impl_ = std::make_unique<Impl>();
  impl_->device = device;
}

LossSession::~LossSession() = default;

void LossSession::release() {
  CUDA_CHECK(cudaStreamSynchronize(impl_->stream.get()));
  impl_->ws = LossWorkspace();
}

size_t LossSession::workspace_bytes() const { return impl_->ws.bytes(); }

void LossSession::loss(LossOutputs& out, const DeviceLossInputs& in, const DeviceLossGrads& grads,
                       const LossParams& options) {
  DeviceGuard guard(impl_->device);
  const DeviceMatrix* inputs[kInputs] = {in.query, in.fused, in.visual, in.text, in.shuffled};
  DeviceMatrix* outputs[kInputs] = {grads.query, grads.fused, grads.visual, grads.text, grads.shuffled};
  const char* names[kInputs] = {"query", "fused", "visual", "text", "shuffled"};
  if (!in.query || in.query->empty()) throw bad_argument(ErrorKind::Type, "query", "missing");
  if (!in.fused || in.fused->empty()) throw bad_argument(ErrorKind::Type, "fused", "missing");

  LossParams p = options;
  p.batch = in.query->rows();
  p.dim = in.query->dim();
  p.k = 0;
  const std::string shape = std::to_string(p.batch) + " x " + std::to_string(p.dim);
  for (int t = 0; t < kInputs; ++t) {
    const DeviceMatrix* m = inputs[t];
    if (!m || m->empty()) continue;
    const bool ok = m->dim() == p.dim && (t == kShuffled ? m->rows() % p.batch == 0 : m->rows() == p.batch);
    if (!ok)
      throw bad_argument(ErrorKind::Range, names[t],
                         (t == kShuffled ? "(batch * k) x " + std::to_string(p.dim) : shape) + " expected, got " +
                             std::to_string(m->rows()) + " x " + std::to_string(m->dim()));
    if (t == kShuffled) p.k = m->rows() / p.batch;
  }
  const char* weight_names[3] = {"visual", "text", "shuffled"};
  const double weights[3] = {p.alpha, p.beta, p.gamma};
  for (int w = 0; w < 3; ++w) {
    const DeviceMatrix* m = inputs[kVisual + w];
    if (weights[w] > 0 && (!m || m->empty())) throw bad_argument(ErrorKind::Type, weight_names[w], "missing");
  }
  if (!(p.temperature > 0)) throw bad_argument(ErrorKind::Range, "temperature", "must be > 0");

  bool want[kInputs];
  for (int t = 0; t < kInputs; ++t) want[t] = outputs[t] != nullptr;
  const LossPlan plan = make_plan(p, want);
  LossWorkspace& ws = impl_->ws;
  ws.prepare(plan, p.labels != nullptr, p.normalize);

  DeviceIO io;
  for (int t = 0; t < kInputs; ++t) {
    if (plan.use[t]) io.input[t] = inputs[t]->data();
    if (!outputs[t] || !p.grads) continue;
    const int64_t rows = t == kShuffled ? (inputs[t] ? inputs[t]->rows() : 0) : p.batch;
    if (rows == 0) continue;
    DeviceMatrix& g = *outputs[t];
    if (g.empty() || g.rows() != rows || g.dim() != p.dim) g = DeviceMatrix(rows, p.dim);
    if (plan.grad[t]) io.grad[t] = g.data();
    else g.fill_zero();  // given with weight 0: zero gradient
  }
  loss_on_device(out, io, p, plan, ws, impl_->stream.get());
}

}  // namespace mbvr::cuda
