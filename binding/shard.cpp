#include "shard.h"

#include <mutex>

#include "async_call.h"
#include "convert.h"
#include "host_buffer.h"
#include "result.h"

namespace mbvr::binding {

// Everything the core reads, owned (copied from JavaScript when the shard is made), and
// what one phase leaves for the next. Jobs hold it by shared_ptr: it outlives the JS object
// while a phase runs.
struct LossShardWrap::State {
  std::mutex mutex;  // one phase at a time
  int phase = 0;     // phases done
  LossParams params;
  FloatBuffer inputs[kLossInputs];
  FloatBuffer margin;
  Int32Buffer labels;
  RowShapes shapes;
  std::unique_ptr<LossShard> core;
  LossOutputs outputs;

  // Locks, and checks that `phase` is next.
  std::unique_lock<std::mutex> begin(int next) {
    std::unique_lock<std::mutex> lock(mutex);
    if (phase != next)
      throw bad_argument(ErrorKind::Generic, "LossShard", "phases run once each, in order: statistics, gradients, finish");
    return lock;
  }
};

namespace {

struct StatisticsJob {
  std::shared_ptr<LossShardWrap::State> s;
  ColumnStats partial;

  void run() {
    auto lock = s->begin(0);
    s->core = std::make_unique<LossShard>(s->params);
    s->core->statistics(partial);
    s->phase = 1;
  }
  Napi::Value result(Napi::Env env) {
    const auto n = [](const auto& v) { return static_cast<int64_t>(v.size()); };
    Napi::Object r = Napi::Object::New(env);
    r.Set("max", DoubleArray::copy_of(env, partial.max.data(), n(partial.max), "column statistics").value());
    r.Set("sum", DoubleArray::copy_of(env, partial.sum.data(), n(partial.sum), "column statistics").value());
    r.Set("positive", FloatArray::copy_of(env, partial.positive.data(), n(partial.positive), "positives").value());
    return r;
  }
};

struct GradientsJob {
  std::shared_ptr<LossShardWrap::State> s;
  ColumnStats merged;
  LossSums sums;
  FloatArray grads[kLossInputs];  // allocated on the JavaScript thread (read_gradients)

  void run() {
    auto lock = s->begin(1);
    LossOutputs& o = s->outputs;
    float** outs[kLossInputs] = {&o.d_query, &o.d_fused, &o.d_visual, &o.d_text, &o.d_shuffled};
    for (int i = 0; i < kLossInputs; ++i) *outs[i] = grads[i].empty() ? nullptr : grads[i].data();
    s->core->gradients(o, sums, merged);
    s->phase = 2;
  }
  Napi::Value result(Napi::Env env) {
    Napi::Object r = Napi::Object::New(env);
    const double v[6] = {sums.qm, sums.mq, sums.v, sums.t, sums.ms, sums.gz};
    r.Set("sums", DoubleArray::copy_of(env, v, 6, "sums").value());
    r.Set("precision", precision_name(s->outputs.precision_used));
    if (s->params.grads) {
      Napi::Object g = Napi::Object::New(env);
      for (int i = 0; i < kLossInputs; ++i)
        if (!grads[i].empty()) g.Set(kLossInputNames[i], grads[i].value());
      r.Set("grads", g);
    }
    return r;
  }
};

struct FinishJob {
  std::shared_ptr<LossShardWrap::State> s;
  FloatArray docs[3];  // fused, visual, text rows of this shard, summed over shards; finished in place

  void run() {
    auto lock = s->begin(2);
    float* d[3];
    for (int i = 0; i < 3; ++i) d[i] = docs[i].empty() ? nullptr : docs[i].data();
    s->core->finish_documents(d[0], d[1], d[2]);
    s->phase = 3;
    s->core.reset();  // done: the scratch memory goes now
  }
  Napi::Value result(Napi::Env env) {
    Napi::Object r = Napi::Object::New(env);
    for (int i = 0; i < 3; ++i)
      if (!docs[i].empty()) r.Set(kLossInputNames[i + 1], docs[i].value());
    return r;
  }
};

std::unique_ptr<GradientsJob> read_gradients(const Napi::CallbackInfo& info, const std::shared_ptr<LossShardWrap::State>& s) {
  auto job = std::make_unique<GradientsJob>();
  job->s = s;
  Napi::Object m = object_argument(info, 0, "merged");
  const int64_t B = s->params.batch;
  const ArrayView<double> max = [&] {
    Napi::Value v = m.Get("max");
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw_bad_argument(info.Env(), ErrorKind::Type, "max", "expected a Float64Array");
    auto a = v.As<Napi::Float64Array>();
    if (static_cast<int64_t>(a.ElementLength()) != B) throw_bad_argument(info.Env(), ErrorKind::Range, "max", "length must be batch");
    return ArrayView<double>{a.Data(), B};
  }();
  Napi::Value sum_value = m.Get("sum");
  if (!sum_value.IsTypedArray() || sum_value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      static_cast<int64_t>(sum_value.As<Napi::Float64Array>().ElementLength()) != B)
    throw_bad_argument(info.Env(), ErrorKind::Type, "sum", "expected a Float64Array of length batch");
  const double* sum = sum_value.As<Napi::Float64Array>().Data();
  const ArrayView<float> positive = float_array_of_length(m.Get("positive"), "positive", B);
  job->merged.max.assign(max.data, max.data + B);
  job->merged.sum.assign(sum, sum + B);
  job->merged.positive.assign(positive.data, positive.data + B);
  const LossParams& p = s->params;
  if (p.grads) {
    const int64_t rows = p.query_rows(), n = p.dim;
    const int64_t sizes[kLossInputs] = {rows * n, p.batch * n, p.batch * n, p.batch * n, rows * p.k * n};
    for (int i = 0; i < kLossInputs; ++i)
      if (!s->inputs[i].empty()) job->grads[i] = FloatArray(info.Env(), sizes[i], "a gradient");
  }
  return job;
}

std::unique_ptr<FinishJob> read_finish(const Napi::CallbackInfo& info, const std::shared_ptr<LossShardWrap::State>& s) {
  auto job = std::make_unique<FinishJob>();
  job->s = s;
  Napi::Object d = object_argument(info, 0, "documents");
  const LossParams& p = s->params;
  const int64_t n = p.query_rows() * p.dim;
  for (int i = 0; i < 3; ++i) {
    const char* name = kLossInputNames[i + 1];
    Napi::Value v = d.Get(name);
    if (v.IsUndefined()) continue;
    const ArrayView<float> a = float_array_of_length(v, name, n);
    job->docs[i] = FloatArray::copy_of(info.Env(), a.data, a.length, "a copy of a gradient");
  }
  return job;
}

}  // namespace

Napi::Function LossShardWrap::Define(Napi::Env env) {
  return DefineClass(env, "LossShard",
                     {InstanceMethod("statistics", &LossShardWrap::Statistics),
                      InstanceMethod("statisticsSync", &LossShardWrap::StatisticsSync),
                      InstanceMethod("gradients", &LossShardWrap::Gradients),
                      InstanceMethod("gradientsSync", &LossShardWrap::GradientsSync),
                      InstanceMethod("finish", &LossShardWrap::Finish),
                      InstanceMethod("finishSync", &LossShardWrap::FinishSync),
                      InstanceMethod("scalars", &LossShardWrap::Scalars)});
}

// new LossShard({ batch, dim, k, row0, rows, query, shuffled?, fused, visual?, text? },
//               { ...loss options, margin: rows entries, labels: batch entries, rowShapes? })
LossShardWrap::LossShardWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LossShardWrap>(info) {
  Napi::Env env = info.Env();
  auto s = std::make_shared<State>();
  guard(env, [&] {
    Napi::Object in = object_argument(info, 0, "inputs");
    Napi::Object options = object_argument(info, 1, "options");
    LossParams& p = s->params;
    p.batch = size_option(in, "batch");
    p.dim = size_option(in, "dim");
    p.k = count_option(in, "k", 0);
    p.row0 = count_option(in, "row0", 0);
    p.rows = count_option(in, "rows", 0);
    if (p.row0 + p.rows > p.batch) throw_bad_argument(env, ErrorKind::Range, "rows", "the shard must lie inside the batch");
    const int64_t docs = checked_product(env, p.batch, p.dim, "batch * dim");
    const int64_t own = p.rows * p.dim;
    const int64_t shuffled = checked_product(env, own, std::max<int64_t>(p.k, 1), "rows * k * dim");
    const float** pointers[kLossInputs] = {&p.query, &p.fused, &p.visual, &p.text, &p.shuffled};
    const int64_t lengths[kLossInputs] = {own, docs, docs, docs, shuffled};
    for (int i = 0; i < kLossInputs; ++i) {
      Napi::Value v = in.Get(kLossInputNames[i]);
      if (v.IsUndefined() && i != 1) continue;
      if (i == 4 && p.k < 1) throw_bad_argument(env, ErrorKind::Range, "k", "must be >= 1 with shuffled rows");
      const ArrayView<float> a = float_array_of_length(v, kLossInputNames[i], lengths[i]);
      s->inputs[i] = FloatBuffer::copy_of(a.data, a.length, "a copy of an input");
      *pointers[i] = s->inputs[i].data();
    }
    const LossOptionArrays arrays = loss_options(options, p.rows, p.batch, p);
    if (p.margin_per_row) {
      s->margin = copy_of(arrays.margin.data, arrays.margin.length, "a copy of margin");
      p.margin_per_row = s->margin.empty() ? nullptr : s->margin.data();
      if (p.rows == 0) p.margin_per_row = nullptr;
    }
    if (p.labels) {
      s->labels = copy_of(arrays.labels.data, arrays.labels.length, "a copy of labels");
      p.labels = s->labels.data();
    }
    p.threads = threads_option(options);
    p.logit_cache_bytes = count_option(options, "logitCacheBytes", -1);
    Napi::Value shapes = options.Get("rowShapes");
    if (!shapes.IsUndefined()) {
      if (!shapes.IsTypedArray() || shapes.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
          shapes.As<Napi::Float64Array>().ElementLength() != 4)
        throw_bad_argument(env, ErrorKind::Type, "rowShapes", "expected a Float64Array of 4");
      auto a = shapes.As<Napi::Float64Array>();
      s->shapes = RowShapes{a[0], a[1], a[2], a[3]};
      p.shapes = &s->shapes;
    }
    check_loss_sizes(p);
  });
  state_ = std::move(s);
}

Napi::Value LossShardWrap::Statistics(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<StatisticsJob>();
  job->s = state_;
  return run_async(info.Env(), "mbvrLossShard", std::move(job));
}
Napi::Value LossShardWrap::StatisticsSync(const Napi::CallbackInfo& info) {
  StatisticsJob job{state_, {}};
  return run_sync(info.Env(), job);
}
Napi::Value LossShardWrap::Gradients(const Napi::CallbackInfo& info) {
  std::unique_ptr<GradientsJob> job = guard(info.Env(), [&] { return read_gradients(info, state_); });
  return run_async(info.Env(), "mbvrLossShard", std::move(job));
}
Napi::Value LossShardWrap::GradientsSync(const Napi::CallbackInfo& info) {
  std::unique_ptr<GradientsJob> job = guard(info.Env(), [&] { return read_gradients(info, state_); });
  return run_sync(info.Env(), *job);
}
Napi::Value LossShardWrap::Finish(const Napi::CallbackInfo& info) {
  std::unique_ptr<FinishJob> job = guard(info.Env(), [&] { return read_finish(info, state_); });
  return run_async(info.Env(), "mbvrLossShard", std::move(job));
}
Napi::Value LossShardWrap::FinishSync(const Napi::CallbackInfo& info) {
  std::unique_ptr<FinishJob> job = guard(info.Env(), [&] { return read_finish(info, state_); });
  return run_sync(info.Env(), *job);
}

Napi::Value LossShardWrap::Scalars(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = info[0];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      v.As<Napi::Float64Array>().ElementLength() != 6)
    throw_bad_argument(env, ErrorKind::Type, "sums", "expected a Float64Array of 6");
  auto a = v.As<Napi::Float64Array>();
  LossSums total;
  total.qm = a[0];
  total.mq = a[1];
  total.v = a[2];
  total.t = a[3];
  total.ms = a[4];
  total.gz = a[5];
  LossOutputs out;
  finish_scalars(out, total, state_->params);
  out.backend_used = Backend::Cpu;
  out.precision_used = state_->outputs.precision_used;
  const Napi::Value no_arrays[kLossInputs];
  return loss_result(env, out, state_->params.grads, no_arrays);
}

}  // namespace mbvr::binding
