#include "loss.h"

#include "async_call.h"
#include "convert.h"
#include "host_buffer.h"
#include "inspect.h"
#include "result.h"

namespace mbvr::binding {
namespace {

// One loss call: the core's params, the memory they point into when the call owns it
// (an asynchronous call copies its inputs), and the gradient buffers.
struct LossJob {
  LossParams params;
  LossOutputs outputs;
  FloatBuffer inputs[kLossInputs];
  FloatBuffer margin;
  Int32Buffer labels;
  FloatArray grads[kLossInputs];

  void run() { loss(outputs, params); }

  Napi::Value result(Napi::Env env) {
    Napi::Value g[kLossInputs];
    for (int i = 0; i < kLossInputs; ++i)
      if (!grads[i].empty()) g[i] = grads[i].value();
    return loss_result(env, outputs, params.grads, g);
  }
};

// Reads (inputs, options): kinds and sizes only (src/ checks values). With `own`, the
// job copies every array it will read.
void read_loss_call(const Napi::CallbackInfo& info, LossJob& job, bool own) {
  Napi::Env env = info.Env();
  Napi::Object inputs = object_argument(info, 0, "inputs");
  Napi::Object options = object_argument(info, 1, "options");
  LossParams& p = job.params;
  p.batch = size_option(inputs, "batch");
  p.dim = size_option(inputs, "dim");
  const int64_t n = checked_product(env, p.batch, p.dim, "batch * dim");

  const float** pointers[kLossInputs] = {&p.query, &p.fused, &p.visual, &p.text, &p.shuffled};
  int64_t lengths[kLossInputs] = {};
  bool given[kLossInputs] = {};
  for (int i = 0; i < kLossInputs; ++i) {
    const char* name = kLossInputNames[i];
    Napi::Value v = inputs.Get(name);
    if (v.IsUndefined() && i >= 2) continue;  // visual, text, shuffled are optional
    given[i] = true;
    ArrayView<float> a = i == 4 ? float_array(v, name) : float_array_of_length(v, name, n);
    if (i == 4) {
      if (a.length == 0 || a.length % n != 0)
        throw_bad_argument(env, ErrorKind::Range, name, "length must be a whole multiple of batch * dim");
      p.k = a.length / n;
    }
    lengths[i] = a.length;
    *pointers[i] = a.data;
    if (own) {
      job.inputs[i] = copy_of(a.data, a.length, "a copy of an input");
      *pointers[i] = job.inputs[i].data();
    }
  }

  const LossOptionArrays arrays = loss_options(options, p.batch, p.batch, p);
  if (own && p.margin_per_row) {
    job.margin = copy_of(arrays.margin.data, arrays.margin.length, "a copy of margin");
    p.margin_per_row = job.margin.data();
  }
  if (own && p.labels) {
    job.labels = copy_of(arrays.labels.data, arrays.labels.length, "a copy of labels");
    p.labels = job.labels.data();
  }
  p.backend = backend_option(options);
  p.threads = threads_option(options);
  p.logit_cache_bytes = count_option(options, "logitCacheBytes", -1);

  if (p.grads) {
    LossOutputs& o = job.outputs;
    float** outs[kLossInputs] = {&o.d_query, &o.d_fused, &o.d_visual, &o.d_text, &o.d_shuffled};
    for (int i = 0; i < kLossInputs; ++i) {
      if (!given[i]) continue;
      job.grads[i] = FloatArray(env, lengths[i], "a gradient");
      *outs[i] = job.grads[i].data();
    }
  }
}

}  // namespace

Napi::Value LossSync(const Napi::CallbackInfo& info) {
  LossJob job;
  guard(info.Env(), [&] { read_loss_call(info, job, false); });
  return run_sync(info.Env(), job);
}

Napi::Value LossAsync(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<LossJob>();
  guard(info.Env(), [&] { read_loss_call(info, *job, true); });
  return run_async(info.Env(), "mbvrLoss", std::move(job));
}

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("rows", info[1]);
  sizes.Set("dim", info[2]);
  const int64_t rows = count_option(sizes, "rows", 0);
  const int64_t dim = size_option(sizes, "dim");
  const ArrayView<float> x = float_array_of_length(info[0], "array", checked_product(env, rows, dim, "rows * dim"));
  const RowFacts f = inspect_rows(x.data, rows, dim, resolve_threads(0));
  auto out = Napi::Float64Array::New(env, 5);
  out[0] = static_cast<double>(f.first_nonfinite);
  out[1] = f.nonfinite_value;
  out[2] = f.max_norm;
  out[3] = f.min_norm;
  out[4] = f.max_fourth;
  return out;
}

}  // namespace mbvr::binding
