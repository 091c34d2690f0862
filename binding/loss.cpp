#include "loss.h"

#include <string>
#include <vector>

#include "convert.h"

namespace mbvr::binding {
namespace {

// What one call needs: the core's params and the JS objects behind its pointers.
struct LossCall {
  LossParams params;
  LossOutputs outputs;
  // Gradient arrays, allocated on the JS thread before the work starts.
  Napi::Float32Array d_query, d_fused, d_visual, d_text, d_shuffled;
  // Every typed array the params point into (held by reference during async work).
  std::vector<Napi::Value> held;
};

Napi::Float32Array allocate_like(Napi::Env env, const float* input, int64_t length, float** out) {
  if (!input) return Napi::Float32Array();
  auto a = Napi::Float32Array::New(env, static_cast<size_t>(length));
  *out = a.Data();
  return a;
}

// Reads (inputs, options) from JS. Checks every kind and size; finiteness and the
// remaining value checks are left to mbvr::validate, inside the core.
void read_call(const Napi::CallbackInfo& info, LossCall& call) {
  Napi::Env env = info.Env();
  Napi::Object inputs = object_argument(info, 0, "inputs");
  Napi::Object options = object_argument(info, 1, "options");
  LossParams& p = call.params;
  p.batch = size_option(inputs, "batch");
  p.dim = size_option(inputs, "dim");
  if (static_cast<double>(p.batch) * static_cast<double>(p.dim) > 9007199254740991.0)
    throw to_js_error(env, ErrorKind::Range, "batch * dim is too large");
  const int64_t n = p.batch * p.dim;
  const auto rows = [&](const char* name) {
    FloatArray a = float_array_of_length(env, inputs.Get(name), name, n, "batch * dim");
    call.held.push_back(a.value);
    return a.data;
  };
  p.query = rows("query");
  p.fused = rows("fused");
  if (!inputs.Get("visual").IsUndefined()) p.visual = rows("visual");
  if (!inputs.Get("text").IsUndefined()) p.text = rows("text");
  if (!inputs.Get("shuffled").IsUndefined()) {
    FloatArray s = shuffled_array(env, inputs.Get("shuffled"), n);
    call.held.push_back(s.value);
    p.shuffled = s.data;
    p.k = s.length / n;
  }

  loss_options(env, options, p.batch, p);
  // Held, not copied: the async path reads them in place (see LossCall).
  if (p.margin_per_row) call.held.push_back(options.Get("margin"));
  if (p.labels) call.held.push_back(options.Get("labels"));
  p.backend = backend_option(options);
  p.threads = threads_option(options);
  if (!options.Get("logitCacheBytes").IsUndefined()) {
    const double bytes = number_option(options, "logitCacheBytes", 0);
    if (bytes < 0 || bytes != static_cast<double>(static_cast<int64_t>(bytes)))
      throw to_js_error(env, ErrorKind::Range,
                        invalid_parameter(ErrorKind::Range, "logitCacheBytes", "a whole number >= 0",
                                          std::to_string(bytes)).what());
    p.logit_cache_bytes = static_cast<int64_t>(bytes);
  }

  if (p.grads) {
    LossOutputs& o = call.outputs;
    call.d_query = allocate_like(env, p.query, n, &o.d_query);
    call.d_fused = allocate_like(env, p.fused, n, &o.d_fused);
    call.d_visual = allocate_like(env, p.visual, n, &o.d_visual);
    call.d_text = allocate_like(env, p.text, n, &o.d_text);
    call.d_shuffled = allocate_like(env, p.shuffled, n * p.k, &o.d_shuffled);
  }
}

Napi::Object make_result(Napi::Env env, const LossCall& call) {
  const LossOutputs& o = call.outputs;
  Napi::Object result = Napi::Object::New(env);
  result.Set("loss", o.loss);
  Napi::Object terms = Napi::Object::New(env);
  terms.Set("qm", o.terms.qm);
  terms.Set("mq", o.terms.mq);
  terms.Set("v", o.terms.v);
  terms.Set("t", o.terms.t);
  terms.Set("ms", o.terms.ms);
  result.Set("terms", terms);
  if (call.params.grads) {
    Napi::Object grads = Napi::Object::New(env);
    grads.Set("query", call.d_query);
    grads.Set("fused", call.d_fused);
    if (!call.d_visual.IsEmpty()) grads.Set("visual", call.d_visual);
    if (!call.d_text.IsEmpty()) grads.Set("text", call.d_text);
    if (!call.d_shuffled.IsEmpty()) grads.Set("shuffled", call.d_shuffled);
    grads.Set("temperature", o.d_temperature);
    result.Set("grads", grads);
  }
  result.Set("backend", backend_name(o.backend_used));
  result.Set("precision", precision_name(o.precision_used));
  return result;
}

// The async path: Execute() runs on a libuv worker thread and never touches JS. The
// argument objects and the output arrays are held by persistent references until the
// promise settles, so the memory the core reads and writes stays alive.
class LossWorker : public Napi::AsyncWorker {
 public:
  LossWorker(Napi::Env env, LossCall call)
      : Napi::AsyncWorker(env, "mbvrLoss"), deferred_(Napi::Promise::Deferred::New(env)), call_(std::move(call)) {
    for (Napi::Value v : call_.held) inputs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    call_.held.clear();
    // napi_values die with the calling scope: hold the output arrays by reference and
    // take them back in OnOK.
    for (size_t g = 0; g < kGrads; ++g)
      if (!grad(g).IsEmpty()) grads_[g] = Napi::Persistent(grad(g).As<Napi::Object>());
  }

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      loss(call_.outputs, call_.params);
    } catch (const Error& e) {
      kind_ = e.kind;
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      kind_ = ErrorKind::Generic;
      SetError("mbvr ran out of memory; use a smaller batch or free memory first");
    } catch (const std::exception& e) {
      kind_ = ErrorKind::Generic;
      SetError(e.what());
    }
  }
  // Settling may fail when the environment is being torn down (a worker_thread
  // terminated, or the process exiting, while the work ran): then there is nobody
  // to tell, and an exception escaping here would abort the process.
  void OnOK() override {
    settle([&] {
      for (size_t g = 0; g < kGrads; ++g)
        if (!grads_[g].IsEmpty()) grad(g) = grads_[g].Value().As<Napi::Float32Array>();
      deferred_.Resolve(make_result(Env(), call_));
    });
  }
  void OnError(const Napi::Error& e) override {
    settle([&] { deferred_.Reject(to_js_error(Env(), kind_, e.Message()).Value()); });
  }

 private:
  template <class Fn>
  void settle(Fn fn) {
    try {
      fn();
    } catch (const Napi::Error& e) {
      try {
        deferred_.Reject(e.Value());
      } catch (...) {
      }
    } catch (...) {
    }
  }

  static constexpr size_t kGrads = 5;
  Napi::Float32Array& grad(size_t g) {
    Napi::Float32Array* all[kGrads] = {&call_.d_query, &call_.d_fused, &call_.d_visual, &call_.d_text,
                                       &call_.d_shuffled};
    return *all[g];
  }

  Napi::Promise::Deferred deferred_;
  LossCall call_;
  std::vector<Napi::ObjectReference> inputs_;  // keeps the input arrays alive
  Napi::ObjectReference grads_[kGrads];
  ErrorKind kind_ = ErrorKind::Generic;
};

}  // namespace

Napi::Value LossSync(const Napi::CallbackInfo& info) {
  LossCall call;
  read_call(info, call);
  guard(info.Env(), [&] { loss(call.outputs, call.params); });
  return make_result(info.Env(), call);
}

Napi::Value LossAsync(const Napi::CallbackInfo& info) {
  LossCall call;
  read_call(info, call);
  auto* worker = new LossWorker(info.Env(), std::move(call));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace mbvr::binding
