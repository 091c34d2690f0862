#include "large_buffer.h"

#include <cstdint>
#include <cstdlib>
#include <new>

#include "../mbvr.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace mbvr::cpu {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

LargeBuffer::~LargeBuffer() { std::free(block_); }

void LargeBuffer::reserve(size_t bytes) {
  if (bytes <= capacity_) return;
  std::free(block_);
  block_ = nullptr;
  data_ = nullptr;
  capacity_ = 0;
  // Below a huge page, alignment buys nothing: a cache line will do.
  const size_t align = bytes >= kHugePage ? kHugePage : 64;
  if (bytes > SIZE_MAX - align) throw out_of_memory(static_cast<double>(bytes), "the loss's scratch memory");
  // The slack before the aligned start is never touched: when malloc serves the block
  // with its own mapping (large blocks, usually) it never becomes resident.
  block_ = std::malloc(bytes + align);
  if (!block_) throw out_of_memory(static_cast<double>(bytes + align), "the loss's scratch memory");
  const uintptr_t start = (reinterpret_cast<uintptr_t>(block_) + align - 1) & ~(uintptr_t{align} - 1);
  data_ = reinterpret_cast<void*>(start);
  capacity_ = bytes;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHugePage) {
    // Whole huge pages only (madvise wants page-aligned ranges); failure is harmless.
    const size_t advised = bytes & ~(kHugePage - 1);
    if (advised) madvise(data_, advised, MADV_HUGEPAGE);
  }
#endif
}

}  // namespace mbvr::cpu
