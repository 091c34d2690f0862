// similarity() and shuffledLogits() for JavaScript (synchronous).
#pragma once

#include <napi.h>

namespace mbvr::binding {

Napi::Value Similarity(const Napi::CallbackInfo& info);
Napi::Value ShuffledLogits(const Napi::CallbackInfo& info);

}  // namespace mbvr::binding
