#include "result.h"

namespace mbvr::binding {

const char* const kLossInputNames[kLossInputs] = {"query", "fused", "visual", "text", "shuffled"};

Napi::Object loss_result(Napi::Env env, const LossOutputs& out, bool with_grads, const Napi::Value grads[kLossInputs]) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("loss", out.loss);
  Napi::Object terms = Napi::Object::New(env);
  terms.Set("qm", out.terms.qm);
  terms.Set("mq", out.terms.mq);
  terms.Set("v", out.terms.v);
  terms.Set("t", out.terms.t);
  terms.Set("ms", out.terms.ms);
  result.Set("terms", terms);
  if (with_grads) {
    Napi::Object g = Napi::Object::New(env);
    for (int i = 0; i < kLossInputs; ++i)
      if (!grads[i].IsEmpty()) g.Set(kLossInputNames[i], grads[i]);
    g.Set("temperature", out.d_temperature);
    result.Set("grads", g);
  }
  result.Set("backend", backend_name(out.backend_used));
  result.Set("precision", precision_name(out.precision_used));
  return result;
}

}  // namespace mbvr::binding
