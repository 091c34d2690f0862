// The device-resident API of the CUDA backend, for training loops: upload embeddings
// once, compute the loss on device memory, leave the gradients on the device, and
// download only what is needed. Plain C++ (no CUDA header), so the binding can include
// it; it is implemented only when the addon is built with CUDA (MBVR_WITH_CUDA).
//
//   mbvr::cuda::DeviceMatrix q(B, D), m(B, D), dq(B, D), dm(B, D);
//   q.upload(host_q);  m.upload(host_m);                    // once, or every step
//   mbvr::cuda::LossSession session;                         // keeps its scratch memory
//   mbvr::LossOutputs scalars;                               // host gradient pointers ignored
//   session.loss(scalars, {&q, &m}, {&dq, &dm}, options);    // options: a LossParams
//   dq.download(host_dq);                                    // when wanted
//
// Every call runs on the calling thread's current CUDA device and returns when the work
// is finished. Errors throw mbvr::Error (out of memory: "GPU out of memory: ...").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "../mbvr.h"

namespace mbvr::cuda {

// Page-locked host memory: copies from and to it run at full bus speed.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(int64_t floats);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  float* data() { return ptr_; }
  const float* data() const { return ptr_; }
  int64_t size() const { return size_; }  // floats

 private:
  float* ptr_ = nullptr;
  int64_t size_ = 0;
};

// rows x dim floats on the device in the kernels' layout: row r starts at
// data() + r * pitch(), pitch() >= dim (a multiple of 64), and storage exists for
// padded_rows() >= rows rows (a multiple of 128). Padding is zero after construction
// and after upload(); the kernels never depend on it.
class DeviceMatrix {
 public:
  DeviceMatrix() = default;
  DeviceMatrix(int64_t rows, int64_t dim);  // zero-filled
  ~DeviceMatrix();
  DeviceMatrix(DeviceMatrix&& o) noexcept;
  DeviceMatrix& operator=(DeviceMatrix&& o) noexcept;
  DeviceMatrix(const DeviceMatrix&) = delete;
  DeviceMatrix& operator=(const DeviceMatrix&) = delete;

  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  int64_t pitch() const { return pitch_; }
  int64_t padded_rows() const { return padded_rows_; }
  bool empty() const { return data_ == nullptr; }
  float* data() { return data_; }  // device pointer
  const float* data() const { return data_; }

  // Host <-> device, rows x dim row-major (contiguous) host memory; synchronous. Pinned
  // host memory (PinnedBuffer) is faster, any host memory works.
  void upload(const float* host);
  void download(float* host) const;
  // From device memory holding rows x dim floats with row stride src_pitch (elements),
  // e.g. another library's contiguous tensor (src_pitch = dim); synchronous.
  void copy_from_device(const float* src, int64_t src_pitch);
  void fill_zero();

 private:
  float* data_ = nullptr;
  int64_t rows_ = 0, dim_ = 0, pitch_ = 0, padded_rows_ = 0;
};

// Inputs on the device: query, fused, visual, text are B x D; shuffled is (B*K) x D.
// visual/text/shuffled may be null when their weight is 0.
struct DeviceLossInputs {
  const DeviceMatrix* query = nullptr;
  const DeviceMatrix* fused = nullptr;
  const DeviceMatrix* visual = nullptr;
  const DeviceMatrix* text = nullptr;
  const DeviceMatrix* shuffled = nullptr;
};

// Gradients on the device, written with `=`; null: not wanted. An empty matrix (or one
// of the wrong shape) is (re)allocated with the input's shape. A wanted gradient whose
// term has weight 0 is set to zero.
struct DeviceLossGrads {
  DeviceMatrix* query = nullptr;
  DeviceMatrix* fused = nullptr;
  DeviceMatrix* visual = nullptr;
  DeviceMatrix* text = nullptr;
  DeviceMatrix* shuffled = nullptr;
};

// Reusable state for repeated calls: a stream and the loss's scratch memory (kept
// between calls, grown when a call needs more).
class LossSession {
 public:
  LossSession();
  ~LossSession();
  LossSession(const LossSession&) = delete;
  LossSession& operator=(const LossSession&) = delete;

  // The loss of docs/math.md §2 on device inputs. `options` is read like the host API's
  // params: temperature, alpha, beta, gamma, margin / margin_per_row and labels (host
  // arrays of length B), normalize, grads, precision; its input pointers, sizes,
  // backend and threads are ignored (sizes come from the matrices). Fills out's
  // scalars (loss, terms, d_temperature); out's host gradient pointers are ignored.
  // Inputs are not scanned for NaN or infinity (the host API does that).
  void loss(LossOutputs& out, const DeviceLossInputs& inputs, const DeviceLossGrads& grads,
            const LossParams& options);

  void release();               // frees the scratch memory now
  size_t workspace_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mbvr::cuda
