#include "convert.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace mbvr::binding {
namespace {

std::string describe(Napi::Value v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsArray()) return "Array";
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "Int8Array";
      case napi_uint8_array: return "Uint8Array";
      case napi_uint8_clamped_array: return "Uint8ClampedArray";
      case napi_int16_array: return "Int16Array";
      case napi_uint16_array: return "Uint16Array";
      case napi_int32_array: return "Int32Array";
      case napi_uint32_array: return "Uint32Array";
      case napi_float32_array: return "Float32Array";
      case napi_float64_array: return "Float64Array";
      case napi_bigint64_array: return "BigInt64Array";
      case napi_biguint64_array: return "BigUint64Array";
      default: return "TypedArray";
    }
  }
  if (v.IsNumber()) {
    std::ostringstream s;
    s << v.As<Napi::Number>().DoubleValue() << " of type number";
    return s.str();
  }
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsFunction()) return "a function";
  return "an object";
}

[[noreturn]] void fail(Napi::Env env, ErrorKind kind, const std::string& name, const std::string& expected,
                       const std::string& actual) {
  throw to_js_error(env, kind, invalid_parameter(kind, name, expected, actual).what());
}

// A typed array of the wanted type whose buffer is still attached.
Napi::TypedArray typed_array(Napi::Env env, Napi::Value value, const char* name, napi_typedarray_type type,
                             const char* type_name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type)
    fail(env, ErrorKind::Type, name, std::string("a ") + type_name, describe(value));
  auto array = value.As<Napi::TypedArray>();
  if (array.ArrayBuffer().IsDetached())
    fail(env, ErrorKind::Type, name, std::string("a ") + type_name + " with an attached buffer",
         "a detached buffer");
  return array;
}

}  // namespace

Napi::Error to_js_error(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::Type: return Napi::TypeError::New(env, message);
    case ErrorKind::Range: return Napi::RangeError::New(env, message);
    default: return Napi::Error::New(env, message);
  }
}

FloatArray float_array(Napi::Env env, Napi::Value value, const char* name) {
  auto array = typed_array(env, value, name, napi_float32_array, "Float32Array");
  auto f = array.As<Napi::Float32Array>();
  FloatArray out;
  out.length = static_cast<int64_t>(f.ElementLength());
  out.data = out.length > 0 ? f.Data() : nullptr;
  out.value = value;
  return out;
}

FloatArray float_array_of_length(Napi::Env env, Napi::Value value, const char* name, int64_t length,
                                 const char* shape) {
  FloatArray out = float_array(env, value, name);
  if (out.length != length)
    fail(env, ErrorKind::Range, name,
         "a Float32Array of length " + std::to_string(length) + " (" + shape + ")",
         "length " + std::to_string(out.length));
  return out;
}

FloatArray shuffled_array(Napi::Env env, Napi::Value value, int64_t row_block) {
  FloatArray s = float_array(env, value, "shuffled");
  if (s.length == 0 || s.length % row_block != 0)
    fail(env, ErrorKind::Range, "shuffled",
         "a Float32Array of length batch * k * dim (a whole multiple of " + std::to_string(row_block) + ")",
         "length " + std::to_string(s.length));
  return s;
}

const int32_t* int32_array_of_length(Napi::Env env, Napi::Value value, const char* name, int64_t length) {
  auto array = typed_array(env, value, name, napi_int32_array, "Int32Array").As<Napi::Int32Array>();
  if (static_cast<int64_t>(array.ElementLength()) != length)
    fail(env, ErrorKind::Range, name, "an Int32Array of length " + std::to_string(length) + " (batch)",
         "length " + std::to_string(array.ElementLength()));
  return array.Data();
}

double number_option(Napi::Object options, const char* key, double fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) fail(options.Env(), ErrorKind::Type, key, "a number", describe(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) fail(options.Env(), ErrorKind::Range, key, "a finite number", describe(v));
  return d;
}

int64_t size_option(Napi::Object options, const char* key) {
  Napi::Value v = options.Get(key);
  if (!v.IsNumber()) fail(options.Env(), ErrorKind::Type, key, "a positive integer", describe(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1) || d != std::floor(d) || d > 9007199254740991.0)
    fail(options.Env(), ErrorKind::Range, key, "a positive integer", describe(v));
  return static_cast<int64_t>(d);
}

bool bool_option(Napi::Object options, const char* key, bool fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) fail(options.Env(), ErrorKind::Type, key, "a boolean", describe(v));
  return v.As<Napi::Boolean>().Value();
}

namespace {
std::string string_option(Napi::Object options, const char* key, const char* fallback, const char* allowed) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) fail(options.Env(), ErrorKind::Type, key, std::string("one of ") + allowed, describe(v));
  return v.As<Napi::String>().Utf8Value();
}
}  // namespace

Backend backend_option(Napi::Object options) {
  const char* allowed = "'auto', 'cpu', 'cuda'";
  std::string s = string_option(options, "backend", "auto", allowed);
  if (s == "auto") return Backend::Auto;
  if (s == "cpu") return Backend::Cpu;
  if (s == "cuda") return Backend::Cuda;
  fail(options.Env(), ErrorKind::Range, "backend", std::string("one of ") + allowed, "'" + s + "'");
}

Precision precision_option(Napi::Object options) {
  const char* allowed = "'fp32', 'tf32', 'bf16'";
  std::string s = string_option(options, "precision", "fp32", allowed);
  if (s == "fp32") return Precision::Fp32;
  if (s == "tf32") return Precision::Tf32;
  if (s == "bf16") return Precision::Bf16;
  fail(options.Env(), ErrorKind::Range, "precision", std::string("one of ") + allowed, "'" + s + "'");
}

int threads_option(Napi::Object options) {
  Napi::Value v = options.Get("threads");
  if (v.IsUndefined()) return 0;
  return static_cast<int>(std::min<int64_t>(size_option(options, "threads"), 1024));
}

void loss_options(Napi::Env env, Napi::Object options, int64_t batch, LossParams& p) {
  p.temperature = number_option(options, "temperature", p.temperature);
  p.alpha = number_option(options, "alpha", p.alpha);
  p.beta = number_option(options, "beta", p.beta);
  p.gamma = number_option(options, "gamma", p.gamma);
  Napi::Value margin = options.Get("margin");
  if (margin.IsTypedArray())
    p.margin_per_row = float_array_of_length(env, margin, "margin", batch, "batch").data;
  else
    p.margin = number_option(options, "margin", 0.0);
  Napi::Value labels = options.Get("labels");
  if (!labels.IsUndefined()) p.labels = int32_array_of_length(env, labels, "labels", batch);
  p.normalize = bool_option(options, "normalize", true);
  p.grads = bool_option(options, "grads", true);
  p.precision = precision_option(options);
}

Napi::Object object_argument(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (v.IsUndefined()) return Napi::Object::New(info.Env());
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray())
    fail(info.Env(), ErrorKind::Type, name, "an object", describe(v));
  return v.As<Napi::Object>();
}

}  // namespace mbvr::binding
