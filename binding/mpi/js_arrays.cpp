#include "js_arrays.h"

#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace mbvr::mpi {

DataArgument read_data(Napi::Env env, Napi::Value value) {
  static const char* const kKinds =
      "mbvr_mpi: data must be a Float32Array, Float64Array, Int32Array or Uint8Array";
  if (!value.IsTypedArray()) throw Napi::TypeError::New(env, kKinds);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  // The data pointer napi gives already includes the byte offset, for any backing store
  // (ArrayBuffer or SharedArrayBuffer). A detached array has length 0.
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr),
                       DataArgument());
  DataArgument d;
  switch (type) {
    case napi_float32_array: d.dtype = Dtype::Float32; break;
    case napi_float64_array: d.dtype = Dtype::Float64; break;
    case napi_int32_array: d.dtype = Dtype::Int32; break;
    case napi_uint8_array: d.dtype = Dtype::Uint8; break;
    default: throw Napi::TypeError::New(env, kKinds);
  }
  d.length = static_cast<int64_t>(length);
  d.data = length ? data : nullptr;
  return d;
}

std::vector<int64_t> read_counts(Napi::Env env, Napi::Value value, int size) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, "mbvr_mpi: counts must be an Array");
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() != static_cast<uint32_t>(size))
    throw Napi::RangeError::New(env, "mbvr_mpi: counts must have one entry per rank");
  std::vector<int64_t> counts(size);
  for (int r = 0; r < size; ++r) {
    Napi::Value v = array.Get(static_cast<uint32_t>(r));
    if (!v.IsNumber()) throw Napi::TypeError::New(env, "mbvr_mpi: counts must hold numbers");
    const double x = v.As<Napi::Number>().DoubleValue();
    if (!(x >= 0 && x <= INT_MAX && std::floor(x) == x))
      throw Napi::RangeError::New(env, "mbvr_mpi: counts must be whole numbers in [0, 2^31 - 1]");
    counts[r] = static_cast<int64_t>(x);
  }
  return counts;
}

namespace {

napi_typedarray_type napi_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return napi_float32_array;
    case Dtype::Float64: return napi_float64_array;
    case Dtype::Int32: return napi_int32_array;
    default: return napi_uint8_array;
  }
}

void free_buffer(napi_env, void* data, void*) { std::free(data); }

}  // namespace

Napi::Value to_typed_array(Napi::Env env, Dtype dtype, OwnedBuffer buffer, int64_t length) {
  const size_t bytes = static_cast<size_t>(length) * element_size(dtype);
  napi_value array_buffer = nullptr;
  napi_status status = napi_generic_failure;
  if (bytes > 0) {
    status = napi_create_external_arraybuffer(env, buffer.data(), bytes, free_buffer, nullptr, &array_buffer);
    if (status == napi_ok) buffer.release();  // JS owns it now
  }
  if (status != napi_ok) {
    // Zero bytes, or external buffers not allowed (e.g. Electron's V8 sandbox): copy.
    void* target = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_create_arraybuffer(env, bytes, &target, &array_buffer), Napi::Value());
    if (bytes) std::memcpy(target, buffer.data(), bytes);
  }
  napi_value array = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, napi_type(dtype), static_cast<size_t>(length), array_buffer, 0, &array),
                       Napi::Value());
  return Napi::Value(env, array);
}

}  // namespace mbvr::mpi
