// JS value -> core struct conversion for the binding. Every function here checks the
// kind and size of what it reads and throws a JS TypeError/RangeError naming the
// argument, with the wording of src/errors.ts, so the core can never read out of bounds
// even when the native module is called directly, bypassing the TypeScript checks.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "mbvr.h"

namespace mbvr::binding {

// A typed array's memory as the core sees it. `value` keeps the JS object for
// references (async work) and result building.
struct FloatArray {
  const float* data = nullptr;
  int64_t length = 0;
  Napi::Value value;
};

// `value` must be a Float32Array (any backing buffer, any offset, not detached).
FloatArray float_array(Napi::Env env, Napi::Value value, const char* name);
// As float_array, and of exactly `length` elements (`shape` describes the length).
FloatArray float_array_of_length(Napi::Env env, Napi::Value value, const char* name, int64_t length,
                                 const char* shape);

// The shuffled rows, B x K x D: a Float32Array whose length is a whole multiple
// (K >= 1) of `row_block` = B * D.
FloatArray shuffled_array(Napi::Env env, Napi::Value value, int64_t row_block);

const int32_t* int32_array_of_length(Napi::Env env, Napi::Value value, const char* name, int64_t length);

// Options: absent/undefined -> fallback; present but of the wrong kind -> TypeError.
double number_option(Napi::Object options, const char* key, double fallback);
int64_t size_option(Napi::Object options, const char* key);  // required whole number >= 1
bool bool_option(Napi::Object options, const char* key, bool fallback);
Backend backend_option(Napi::Object options);
Precision precision_option(Napi::Object options);
int threads_option(Napi::Object options);

// The options of a loss call that the host path and CudaSession share: temperature,
// alpha, beta, gamma, margin (a number, or a Float32Array of length `batch`), labels,
// normalize, grads, precision. margin_per_row and labels point into the JS arrays: a
// caller that runs the call after returning keeps those alive, or copies them.
void loss_options(Napi::Env env, Napi::Object options, int64_t batch, LossParams& p);

Napi::Object object_argument(const Napi::CallbackInfo& info, size_t index, const char* name);

// mbvr::Error / std::bad_alloc -> the matching JS error object.
Napi::Error to_js_error(Napi::Env env, ErrorKind kind, const std::string& message);

// Runs fn and rethrows core errors as JS exceptions.
template <class Fn>
auto guard(Napi::Env env, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw to_js_error(env, e.kind, e.what());
  } catch (const std::bad_alloc&) {
    throw to_js_error(env, ErrorKind::Generic,
                      "mbvr ran out of memory; use a smaller batch or free memory first");
  }
}

}  // namespace mbvr::binding
