// The one builder of a loss result object, for the host path (gradients as
// Float32Arrays), CudaSession (gradients as CudaTensors) and the data-parallel shards.
#pragma once

#include <napi.h>

#include "mbvr.h"

namespace mbvr::binding {

constexpr int kLossInputs = 5;
extern const char* const kLossInputNames[kLossInputs];  // query, fused, visual, text, shuffled

// { loss, terms: { qm, mq, v, t, ms }, grads?: { <input>: grads[i] (when not empty),
//   temperature }, backend, precision }: `grads` only when with_grads.
Napi::Object loss_result(Napi::Env env, const LossOutputs& out, bool with_grads, const Napi::Value grads[kLossInputs]);

}  // namespace mbvr::binding
