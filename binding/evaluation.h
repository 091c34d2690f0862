// modalityBalance, scoreSeparation, topK and retrievalMetrics for JavaScript (synchronous).
#pragma once

#include <napi.h>

namespace mbvr::binding {

Napi::Value ModalityBalance(const Napi::CallbackInfo& info);
Napi::Value ScoreSeparation(const Napi::CallbackInfo& info);
Napi::Value TopK(const Napi::CallbackInfo& info);
Napi::Value RetrievalMetrics(const Napi::CallbackInfo& info);

}  // namespace mbvr::binding
