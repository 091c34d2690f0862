#include "host_buffer.h"

#include <cstring>
#include <string>

#include "convert.h"
#include "mbvr.h"

namespace mbvr::binding {

template <class T>
HostBuffer<T>::HostBuffer(int64_t n, const char* what) {
  const double bytes = static_cast<double>(n) * sizeof(T);
  if (n < 0 || bytes > 9.2e18) throw out_of_memory(bytes, what);
  T* p = static_cast<T*>(std::malloc(n > 0 ? static_cast<size_t>(n) * sizeof(T) : 1));
  if (!p) throw out_of_memory(bytes, what);
  data_.reset(p);
  size_ = n;
}

template <class T>
HostBuffer<T> HostBuffer<T>::copy_of(const T* data, int64_t n, const char* what) {
  HostBuffer<T> b(n, what);
  if (n > 0) std::memcpy(b.data(), data, static_cast<size_t>(n) * sizeof(T));
  return b;
}

template class HostBuffer<float>;
template class HostBuffer<int32_t>;

namespace {
template <class T>
struct Kind;
template <>
struct Kind<float> {
  static constexpr const char* name = "Float32Array";
  static constexpr napi_typedarray_type type = napi_float32_array;
};
template <>
struct Kind<double> {
  static constexpr const char* name = "Float64Array";
  static constexpr napi_typedarray_type type = napi_float64_array;
};
template <>
struct Kind<int32_t> {
  static constexpr const char* name = "Int32Array";
  static constexpr napi_typedarray_type type = napi_int32_array;
};
}  // namespace

template <class T>
JsArray<T>::JsArray(Napi::Env env, int64_t n, const char* what) {
  const double bytes = static_cast<double>(n) * sizeof(T);
  // Beyond what one typed array holds (2^32 elements in Node.js 20): no allocation is tried.
  if (n < 0 || n > (int64_t{1} << 32)) throw bad_argument(ErrorKind::Range, what, "more elements than a typed array holds");
  Napi::Value array;
  try {
    Napi::Value ctor = env.Global().Get(Kind<T>::name);
    if (!ctor.IsFunction()) throw Error(ErrorKind::Type, std::string("mbvr: globalThis.") + Kind<T>::name + " is not a function");
    array = ctor.As<Napi::Function>().New({Napi::Number::New(env, static_cast<double>(n))});
  } catch (const Napi::Error&) {  // "Array buffer allocation failed": the exception is cleared
    throw out_of_memory(bytes, what);
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (!array.IsTypedArray() ||
      napi_get_typedarray_info(env, array, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != Kind<T>::type || static_cast<int64_t>(length) != n)
    throw Error(ErrorKind::Type, std::string("mbvr: globalThis.") + Kind<T>::name + " did not make a " + Kind<T>::name);
  ref_ = Napi::Reference<Napi::Value>::New(array, 1);
  data_ = static_cast<T*>(data);
  size_ = n;
}

template <class T>
JsArray<T> JsArray<T>::copy_of(Napi::Env env, const T* data, int64_t n, const char* what) {
  JsArray<T> a(env, n, what);
  if (n > 0) std::memcpy(a.data(), data, static_cast<size_t>(n) * sizeof(T));
  return a;
}

template class JsArray<float>;
template class JsArray<double>;
template class JsArray<int32_t>;

}  // namespace mbvr::binding
