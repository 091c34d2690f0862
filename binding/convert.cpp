#include "convert.h"

#include <algorithm>
#include <cmath>

namespace mbvr::binding {

Napi::Error to_js_error(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::Type: return Napi::TypeError::New(env, message);
    case ErrorKind::Range: return Napi::RangeError::New(env, message);
    default: return Napi::Error::New(env, message);
  }
}

void throw_bad_argument(Napi::Env env, ErrorKind kind, const std::string& name, const std::string& problem) {
  throw to_js_error(env, kind, bad_argument(kind, name, problem).what());
}

namespace {

template <class T>
ArrayView<T> typed_array(Napi::Value value, const char* name, napi_typedarray_type type, const char* type_name) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_bad_argument(env, ErrorKind::Type, name, std::string("expected ") + type_name);
  auto array = value.As<Napi::TypedArray>();
  if (array.ArrayBuffer().IsDetached()) throw_bad_argument(env, ErrorKind::Type, name, "detached buffer");
  // napi_get_typedarray_info's data pointer (offset included) also serves arrays on a
  // SharedArrayBuffer, which the ArrayBuffer accessors refuse.
  napi_typedarray_type kind;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, value, &kind, &length, &data, &buffer, &offset) != napi_ok)
    throw_bad_argument(env, ErrorKind::Type, name, "unreadable typed array");
  ArrayView<T> view;
  view.length = static_cast<int64_t>(length);
  view.data = length > 0 ? static_cast<const T*>(data) : nullptr;
  return view;
}

template <class T>
ArrayView<T> of_length(ArrayView<T> view, Napi::Env env, const char* name, int64_t length) {
  if (view.length != length)
    throw_bad_argument(env, ErrorKind::Range, name,
                       "length " + std::to_string(view.length) + ", expected " + std::to_string(length));
  return view;
}

}  // namespace

ArrayView<float> float_array(Napi::Value value, const char* name) {
  return typed_array<float>(value, name, napi_float32_array, "a Float32Array");
}

ArrayView<float> float_array_of_length(Napi::Value value, const char* name, int64_t length) {
  return of_length(float_array(value, name), value.Env(), name, length);
}

ArrayView<int32_t> int32_array_of_length(Napi::Value value, const char* name, int64_t length) {
  return of_length(typed_array<int32_t>(value, name, napi_int32_array, "an Int32Array"), value.Env(), name, length);
}

double number_option(Napi::Object options, const char* key, double fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw_bad_argument(options.Env(), ErrorKind::Type, key, "expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

namespace {
int64_t whole_number(Napi::Object options, const char* key, int64_t minimum) {
  Napi::Value v = options.Get(key);
  if (!v.IsNumber()) throw_bad_argument(options.Env(), ErrorKind::Type, key, "expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(minimum)) || d != std::floor(d) || d > 9007199254740991.0)
    throw_bad_argument(options.Env(), ErrorKind::Range, key, "expected a whole number >= " + std::to_string(minimum));
  return static_cast<int64_t>(d);
}
}  // namespace

int64_t size_option(Napi::Object options, const char* key) { return whole_number(options, key, 1); }

int64_t count_option(Napi::Object options, const char* key, int64_t fallback) {
  if (options.Get(key).IsUndefined()) return fallback;
  return whole_number(options, key, 0);
}

bool bool_option(Napi::Object options, const char* key, bool fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw_bad_argument(options.Env(), ErrorKind::Type, key, "expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

namespace {
std::string string_option(Napi::Object options, const char* key, const char* fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw_bad_argument(options.Env(), ErrorKind::Type, key, "expected a string");
  return v.As<Napi::String>().Utf8Value();
}
}  // namespace

Backend backend_option(Napi::Object options) {
  const std::string s = string_option(options, "backend", "auto");
  if (s == "auto") return Backend::Auto;
  if (s == "cpu") return Backend::Cpu;
  if (s == "cuda") return Backend::Cuda;
  throw_bad_argument(options.Env(), ErrorKind::Range, "backend", "unknown backend");
}

Precision precision_option(Napi::Object options) {
  const std::string s = string_option(options, "precision", "fp32");
  if (s == "fp32") return Precision::Fp32;
  if (s == "tf32") return Precision::Tf32;
  if (s == "bf16") return Precision::Bf16;
  throw_bad_argument(options.Env(), ErrorKind::Range, "precision", "unknown precision");
}

int threads_option(Napi::Object options) {
  if (options.Get("threads").IsUndefined()) return 0;
  return static_cast<int>(std::min<int64_t>(size_option(options, "threads"), 1024));
}

int64_t checked_product(Napi::Env env, int64_t a, int64_t b, const char* what) {
  if (static_cast<double>(a) * static_cast<double>(b) > 9007199254740991.0)
    throw_bad_argument(env, ErrorKind::Range, what, "too large");
  return a * b;
}

LossOptionArrays loss_options(Napi::Object options, int64_t margin_rows, int64_t label_rows, LossParams& p) {
  LossOptionArrays arrays;
  p.temperature = number_option(options, "temperature", p.temperature);
  p.alpha = number_option(options, "alpha", p.alpha);
  p.beta = number_option(options, "beta", p.beta);
  p.gamma = number_option(options, "gamma", p.gamma);
  Napi::Value margin = options.Get("margin");
  if (margin.IsTypedArray()) {
    arrays.margin = float_array_of_length(margin, "margin", margin_rows);
    p.margin_per_row = arrays.margin.data;
  } else {
    p.margin = number_option(options, "margin", 0.0);
  }
  Napi::Value labels = options.Get("labels");
  if (!labels.IsUndefined()) {
    arrays.labels = int32_array_of_length(labels, "labels", label_rows);
    p.labels = arrays.labels.data;
  }
  p.normalize = bool_option(options, "normalize", true);
  p.grads = bool_option(options, "grads", true);
  p.precision = precision_option(options);
  return arrays;
}

Napi::Object object_argument(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (v.IsUndefined()) return Napi::Object::New(info.Env());
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray())
    throw_bad_argument(info.Env(), ErrorKind::Type, name, "expected an object");
  return v.As<Napi::Object>();
}

}  // namespace mbvr::binding
