// Scratch arrays of many megabytes (the strip tiles and the fused-logit cache, loss.cpp)
// that a call fills before it reads them.
//
// std::vector would zero them first: one thread touching tens of MiB of fresh pages,
// 4 KiB at a time, measured at 50 ms of a 1 s call (B = 4096, D = 512). A LargeBuffer
// is left uninitialised, so its pages are first touched by the parallel work that
// writes them, and it is 2 MiB aligned and advised for transparent huge pages
// (madvise(MADV_HUGEPAGE); a no-op where the kernel has them off), so that touching
// costs one fault per 2 MiB instead of per 4 KiB.
//
// Memory comes from malloc like every other allocation (so the out-of-memory tests,
// which refuse large mallocs, see it too); a failure throws std::bad_alloc.
#pragma once

#include <cstddef>

namespace mbvr::cpu {

class LargeBuffer {
 public:
  LargeBuffer() = default;
  ~LargeBuffer();
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  // Room for n floats, contents undefined (the previous contents are dropped).
  void resize(size_t n);
  float* data() { return data_; }
  size_t size() const { return size_; }

 private:
  void* block_ = nullptr;  // what malloc returned
  float* data_ = nullptr;  // inside block_, aligned
  size_t size_ = 0;
};

}  // namespace mbvr::cpu
