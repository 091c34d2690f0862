// A block of bytes the addon owns, from malloc: inputs are copied into one on the JS
// thread (so the caller may change, transfer or detach its array at once), outputs are
// written into one on the communication thread and handed to JS as the memory of an
// external ArrayBuffer, freed by free() when JS collects it.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace mbvr::mpi {

class OwnedBuffer {
 public:
  OwnedBuffer() = default;
  // Uninitialised bytes. Never a null pointer (even for 0 bytes), so MPI and memcpy
  // can always be given a valid address; throws std::bad_alloc.
  explicit OwnedBuffer(size_t bytes) : data_(std::malloc(bytes ? bytes : 1)), bytes_(bytes) {
    if (!data_) throw std::bad_alloc();
  }
  static OwnedBuffer copy_of(const void* source, size_t bytes) {
    OwnedBuffer b(bytes);
    if (bytes) std::memcpy(b.data_, source, bytes);
    return b;
  }
  OwnedBuffer(OwnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  OwnedBuffer& operator=(OwnedBuffer&& other) noexcept {
    if (this != &other) {
      std::free(data_);
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  OwnedBuffer(const OwnedBuffer&) = delete;
  OwnedBuffer& operator=(const OwnedBuffer&) = delete;
  ~OwnedBuffer() { std::free(data_); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  // Gives up ownership: the caller frees the pointer with std::free.
  void* release() {
    bytes_ = 0;
    return std::exchange(data_, nullptr);
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace mbvr::mpi
