// mbvrLoss (Promise, on a worker thread) and mbvrLossSync for JavaScript.
#pragma once

#include <napi.h>

namespace mbvr::binding {

Napi::Value LossSync(const Napi::CallbackInfo& info);
Napi::Value LossAsync(const Napi::CallbackInfo& info);

}  // namespace mbvr::binding
