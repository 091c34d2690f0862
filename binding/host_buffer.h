// The memory a native call owns.
//
// HostBuffer: malloc'ed copies of an asynchronous call's inputs, taken before its promise
// is returned, so that nothing the caller does afterwards - transfer, detach, resize,
// garbage collection - can reach the memory a worker thread reads; freed when the call
// ends. A failed allocation is mbvr::out_of_memory, with the bytes asked for.
//
// JsArray: an output (gradients, scores) allocated by JavaScript's own typed-array
// constructor, so that its memory belongs to the garbage collector from the start (no
// finalizer to wait for: a synchronous training loop does not pile up freed outputs) and
// a failed allocation is a catchable error here (V8's C++ allocation API would abort the
// process instead). Held by a reference until the call's result is built; nobody else
// can reach it before, so a worker thread may write it.
#pragma once

#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

namespace mbvr::binding {

template <class T>
class HostBuffer {
 public:
  HostBuffer() = default;
  // n elements, uninitialised; throws mbvr::out_of_memory naming `what`.
  HostBuffer(int64_t n, const char* what);
  static HostBuffer copy_of(const T* data, int64_t n, const char* what);

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  int64_t size() const { return size_; }
  bool empty() const { return !data_; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  int64_t size_ = 0;
};

using FloatBuffer = HostBuffer<float>;
using Int32Buffer = HostBuffer<int32_t>;

// A copy of a view that may be empty (length 0: an empty buffer).
template <class T>
HostBuffer<T> copy_of(const T* data, int64_t n, const char* what) {
  return n > 0 ? HostBuffer<T>::copy_of(data, n, what) : HostBuffer<T>();
}

template <class T>
class JsArray {
 public:
  JsArray() = default;
  // new Float32Array(n) / Int32Array / Float64Array, on the JavaScript thread; throws
  // mbvr::out_of_memory naming `what` when JavaScript cannot allocate it.
  JsArray(Napi::Env env, int64_t n, const char* what);
  // A copy of n values.
  static JsArray copy_of(Napi::Env env, const T* data, int64_t n, const char* what);

  T* data() const { return data_; }
  int64_t size() const { return size_; }
  bool empty() const { return ref_.IsEmpty(); }
  Napi::Value value() const { return ref_.Value(); }

 private:
  Napi::Reference<Napi::Value> ref_;
  T* data_ = nullptr;
  int64_t size_ = 0;
};

using FloatArray = JsArray<float>;
using DoubleArray = JsArray<double>;
using Int32Array = JsArray<int32_t>;

}  // namespace mbvr::binding
