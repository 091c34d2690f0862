// JS value -> core struct conversion for the binding: the memory-safety checks only
// (kinds, lengths, detached buffers, sizes that fit), with terse messages
// ("mbvr: query: expected a Float32Array"). The user-facing checks and their wording are
// the TypeScript layer's (src/validate.ts): these exist so that nothing passed straight
// to the native module can make the core read or write out of bounds.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "mbvr.h"

namespace mbvr::binding {

// A typed array's memory as the core sees it (valid while the JS array is alive and
// attached: a synchronous call, or a copy for an asynchronous one).
template <class T>
struct ArrayView {
  const T* data = nullptr;
  int64_t length = 0;
};

// `value` must be a Float32Array / Int32Array (any backing buffer, any offset, attached).
ArrayView<float> float_array(Napi::Value value, const char* name);
ArrayView<float> float_array_of_length(Napi::Value value, const char* name, int64_t length);
ArrayView<int32_t> int32_array_of_length(Napi::Value value, const char* name, int64_t length);

// Options: absent/undefined -> fallback; present but of the wrong kind -> TypeError.
double number_option(Napi::Object options, const char* key, double fallback);
int64_t size_option(Napi::Object options, const char* key);                   // required, >= 1
int64_t count_option(Napi::Object options, const char* key, int64_t fallback);  // >= 0
bool bool_option(Napi::Object options, const char* key, bool fallback);
Backend backend_option(Napi::Object options);
Precision precision_option(Napi::Object options);
int threads_option(Napi::Object options);

// a * b fits the core's element counts (below 2^53, so a JS number holds it exactly).
int64_t checked_product(Napi::Env env, int64_t a, int64_t b, const char* what);

// The options of a loss call that the host path, CudaSession and LossShard share:
// temperature, alpha, beta, gamma, margin (a number, or a Float32Array of `margin_rows`
// entries), labels (an Int32Array of `label_rows`), normalize, grads, precision.
// The margin and label views point into the JS arrays (see ArrayView).
struct LossOptionArrays {
  ArrayView<float> margin;
  ArrayView<int32_t> labels;
};
LossOptionArrays loss_options(Napi::Object options, int64_t margin_rows, int64_t label_rows, LossParams& p);

Napi::Object object_argument(const Napi::CallbackInfo& info, size_t index, const char* name);

// The JS error class of a core error kind.
Napi::Error to_js_error(Napi::Env env, ErrorKind kind, const std::string& message);
[[noreturn]] void throw_bad_argument(Napi::Env env, ErrorKind kind, const std::string& name, const std::string& problem);

// Runs fn (core work on the JS thread) and rethrows core failures as JS exceptions.
template <class Fn>
auto guard(Napi::Env env, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw to_js_error(env, e.kind, e.what());
  } catch (const std::bad_alloc&) {
    throw to_js_error(env, ErrorKind::Generic, "mbvr: out of memory: an allocation failed");
  }
}

}  // namespace mbvr::binding
