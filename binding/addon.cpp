// The Node-API module: one registration table. Each function converts its arguments,
// checking what memory safety needs (convert.h), and calls the core (cpp/mbvr.h);
// nothing else lives here.
#include <napi.h>

#include "backends.h"
#include "cuda_session.h"
#include "evaluation.h"
#include "loss.h"
#include "shard.h"
#include "similarity.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace mbvr::binding;
  exports.Set("lossSync", Napi::Function::New(env, LossSync, "lossSync"));
  exports.Set("loss", Napi::Function::New(env, LossAsync, "loss"));
  exports.Set("inspect", Napi::Function::New(env, Inspect, "inspect"));
  exports.Set("LossShard", LossShardWrap::Define(env));
  exports.Set("similarity", Napi::Function::New(env, Similarity, "similarity"));
  exports.Set("shuffledLogits", Napi::Function::New(env, ShuffledLogits, "shuffledLogits"));
  exports.Set("backends", Napi::Function::New(env, Backends, "backends"));
  exports.Set("modalityBalance", Napi::Function::New(env, ModalityBalance, "modalityBalance"));
  exports.Set("scoreSeparation", Napi::Function::New(env, ScoreSeparation, "scoreSeparation"));
  exports.Set("topK", Napi::Function::New(env, TopK, "topK"));
  exports.Set("retrievalMetrics", Napi::Function::New(env, RetrievalMetrics, "retrievalMetrics"));
  exports.Set("CudaTensor", CudaTensor::Define(env));
  exports.Set("CudaSession", CudaSession::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(mbvr, Init)
