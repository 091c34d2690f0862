// mbvrLoss (a promise, on a worker thread) and mbvrLossSync for JavaScript, and the
// value scan the TypeScript layer validates inputs with (inspect).
#pragma once

#include <napi.h>

namespace mbvr::binding {

Napi::Value LossSync(const Napi::CallbackInfo& info);
Napi::Value LossAsync(const Napi::CallbackInfo& info);
// inspect(array: Float32Array, rows, dim) -> Float64Array [first non-finite index (or -1),
// its value, max row norm, min row norm, max row sum x^4 / (sum x^2)^2] (cpp/inspect.h).
Napi::Value Inspect(const Napi::CallbackInfo& info);

}  // namespace mbvr::binding
