// LossShard: the data-parallel loss (docs/math.md §6) as three phases around the
// collectives that src/distributed.ts runs over a Communicator:
//   new LossShard(inputs, options)   this rank's rows and the gathered documents (copied)
//   statistics()  -> { max, sum (B), positive (rows) }         L_mq's partial columns
//   gradients({ max, sum, positive (B) })                      with the merged columns
//                 -> { sums [qm, mq, v, t, ms, gz], precision, grads? { query, shuffled?
//                      (this rank's rows), fused, visual?, text? (B x D partial sums) } }
//   finish({ fused, visual?, text? } (this rank's rows, summed over ranks))
//                 -> the same, as dL/dx
//   scalars(sums over every rank) -> { loss, terms, grads?: { temperature }, backend,
//                 precision } (the one result builder, without arrays)
// Each phase has a promise form and a *Sync form; phases run in this order, once.
#pragma once

#include <napi.h>

#include <memory>

namespace mbvr::binding {

class LossShardWrap : public Napi::ObjectWrap<LossShardWrap> {
 public:
  struct State;
  static Napi::Function Define(Napi::Env env);
  explicit LossShardWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Statistics(const Napi::CallbackInfo& info);
  Napi::Value StatisticsSync(const Napi::CallbackInfo& info);
  Napi::Value Gradients(const Napi::CallbackInfo& info);
  Napi::Value GradientsSync(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);
  Napi::Value FinishSync(const Napi::CallbackInfo& info);
  Napi::Value Scalars(const Napi::CallbackInfo& info);

  std::shared_ptr<State> state_;
};

}  // namespace mbvr::binding
