// Scratch arrays of many megabytes (the strip tiles and the fused-logit cache, loss.cpp;
// the bf16 copies, strip_products.cpp) that a call fills before it reads them.
//
// std::vector would zero them first: one thread touching tens of MiB of fresh pages,
// 4 KiB at a time, measured at 50 ms of a 1 s call (B = 4096, D = 512). A LargeArray
// is left uninitialised, so its pages are first touched by the parallel work that
// writes them, and it is 2 MiB aligned and advised for transparent huge pages
// (madvise(MADV_HUGEPAGE); a no-op where the kernel has them off), so that touching
// costs one fault per 2 MiB instead of per 4 KiB.
//
// Memory comes from malloc like every other allocation (so the out-of-memory tests,
// which refuse large mallocs, see it too); a failure throws mbvr::out_of_memory with the
// size asked for.
#pragma once

#include <cstddef>
#include <new>

namespace mbvr::cpu {

// The untyped block behind LargeArray.
class LargeBuffer {
 public:
  LargeBuffer() = default;
  ~LargeBuffer();
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  // Room for `bytes`, contents undefined; keeps the current block when it is big enough.
  void reserve(size_t bytes);
  void* data() { return data_; }
  const void* data() const { return data_; }

 private:
  void* block_ = nullptr;  // what malloc returned
  void* data_ = nullptr;   // inside block_, aligned
  size_t capacity_ = 0;
};

template <typename T>
class LargeArray {
 public:
  // Room for n elements, contents undefined.
  void resize(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) buffer_.reserve(static_cast<size_t>(-1));  // throws
    buffer_.reserve(n * sizeof(T));
  }
  T* data() { return static_cast<T*>(buffer_.data()); }
  const T* data() const { return static_cast<const T*>(buffer_.data()); }

 private:
  LargeBuffer buffer_;
};

}  // namespace mbvr::cpu
