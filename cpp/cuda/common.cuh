// Shared pieces of the CUDA backend: the padded layout every kernel reads, RAII owners
// for device memory and streams, and warp reductions.
//
// Layout rule: a matrix of `rows` x `dim` floats lives on the device with a row pitch of
// padded_dim(dim) elements (a multiple of 64) and, for the B x D inputs, padded_rows(B)
// rows (a multiple of 128). Padding is zero. With it every tile load is a whole, aligned
// 16-byte copy and no tile kernel needs a bounds check on memory; the logits of padded
// rows and columns are masked instead.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "../mbvr.h"
#include "cuda_check.h"

namespace mbvr::cuda {

constexpr int kBlockRows = 128;       // rows of a tile, on both sides (own and walked)
constexpr int64_t kDimMultiple = 64;  // row pitch multiple, in elements
constexpr int kTileThreads = 256;     // 8 warps per tile CTA
constexpr float kNormEps = 1e-12f;    // as torch.nn.functional.normalize

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline int64_t padded_rows(int64_t rows) { return round_up(rows, kBlockRows); }
inline int64_t padded_dim(int64_t dim) { return round_up(dim, kDimMultiple); }

// Blocks for a grid-stride kernel over `items` with `per_block` items per block.
inline unsigned grid_for(int64_t items, int64_t per_block) {
  int64_t blocks = (items + per_block - 1) / per_block;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535) blocks = 65535;
  return static_cast<unsigned>(blocks);
}

// ---------------------------------------------------------------------------
// Device memory and streams (RAII: an exception anywhere frees everything).

// Throws "GPU out of memory: ..." (ErrorKind::Generic) with the sizes involved, after
// clearing the runtime's last error so the next call starts clean.
[[noreturn]] void throw_out_of_memory(size_t bytes, const char* what);

// cudaMalloc that throws mbvr::Error (never leaves a stale error behind).
void* device_alloc(size_t bytes, const char* what);

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  // Capacity of at least `bytes` (contents undefined after a reallocation).
  void ensure(size_t bytes, const char* what) {
    if (bytes <= bytes_ && ptr_) return;
    release();
    ptr_ = device_alloc(bytes == 0 ? 256 : bytes, what);
    bytes_ = bytes;
  }
  void release() noexcept {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A non-blocking stream, synchronised and destroyed when it goes out of scope. Declare
// it after the buffers its work uses, so that it is destroyed (waited for) first.
class Stream {
 public:
  Stream() { CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) {
      cudaStreamSynchronize(s_);
      cudaStreamDestroy(s_);
      cudaGetLastError();
    }
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void sync() const { CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

// ---------------------------------------------------------------------------
// Device helpers.

#ifdef __CUDACC__
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
#endif

}  // namespace mbvr::cuda
