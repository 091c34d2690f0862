#include "evaluation.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../cpp/evaluation.h"
#include "convert.h"
#include "host_buffer.h"

namespace mbvr::binding {
namespace {

// batch and dim of an inputs object.
void read_batch_dim(Napi::Env env, Napi::Object inputs, int64_t& batch, int64_t& dim) {
  batch = size_option(inputs, "batch");
  dim = size_option(inputs, "dim");
  checked_product(env, batch, dim, "batch * dim");
}

// rows, cols, dim of a retrieval call: cols fits Int32Array indices.
void read_retrieval_sizes(Napi::Env env, Napi::Object o, int64_t& rows, int64_t& cols, int64_t& dim) {
  rows = size_option(o, "rows");
  cols = size_option(o, "cols");
  dim = size_option(o, "dim");
  if (cols > 2147483647) throw_bad_argument(env, ErrorKind::Range, "cols", "at most 2147483647");
  checked_product(env, std::max(rows, cols), dim, "rows * dim");
}

Napi::Object summary_object(Napi::Env env, const Summary& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("mean", s.mean);
  o.Set("median", s.median);
  o.Set("p10", s.p10);
  o.Set("p90", s.p90);
  o.Set("count", static_cast<double>(s.count));
  return o;
}

}  // namespace

// modalityBalance({ visual, text, fused, batch, dim })
Napi::Value ModalityBalance(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object in = object_argument(info, 0, "inputs");
  ModalityBalanceParams p;
  read_batch_dim(env, in, p.batch, p.dim);
  const int64_t n = p.batch * p.dim;
  p.visual = float_array_of_length(in.Get("visual"), "visual", n).data;
  p.text = float_array_of_length(in.Get("text"), "text", n).data;
  p.fused = float_array_of_length(in.Get("fused"), "fused", n).data;
  FloatArray rvt, cv, ct;
  ModalityBalanceOutputs out;
  guard(env, [&] {
    rvt = FloatArray(env, p.batch, "R_vt");
    cv = FloatArray(env, p.batch, "cosines");
    ct = FloatArray(env, p.batch, "cosines");
    out.rvt = rvt.data();
    out.cos_visual = cv.data();
    out.cos_text = ct.data();
    modality_balance(out, p);
  });
  Napi::Object result = Napi::Object::New(env);
  result.Set("rvt", rvt.value());
  result.Set("cosVisual", cv.value());
  result.Set("cosText", ct.value());
  result.Set("summary", summary_object(env, out.summary));
  return result;
}

// scoreSeparation({ query, fused, shuffled, batch, dim })
Napi::Value ScoreSeparation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object in = object_argument(info, 0, "inputs");
  ScoreSeparationParams p;
  read_batch_dim(env, in, p.batch, p.dim);
  const int64_t n = p.batch * p.dim;
  p.query = float_array_of_length(in.Get("query"), "query", n).data;
  p.fused = float_array_of_length(in.Get("fused"), "fused", n).data;
  const ArrayView<float> s = float_array(in.Get("shuffled"), "shuffled");
  if (s.length == 0 || s.length % n != 0)
    throw_bad_argument(env, ErrorKind::Range, "shuffled", "length must be a whole multiple of batch * dim");
  p.shuffled = s.data;
  p.k = s.length / n;
  FloatArray positive, shuffled;
  ScoreSeparationOutputs out;
  guard(env, [&] {
    positive = FloatArray(env, p.batch, "scores");
    shuffled = FloatArray(env, p.batch * p.k, "scores");
    out.positive = positive.data();
    out.shuffled = shuffled.data();
    score_separation(out, p);
  });
  Napi::Object result = Napi::Object::New(env);
  result.Set("positive", positive.value());
  result.Set("shuffled", shuffled.value());
  result.Set("auc", out.auc);
  return result;
}

// topK(queries, gallery, { rows, cols, dim, k, normalize?, threads? })
Napi::Value TopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_argument(info, 2, "options");
  TopKParams p;
  read_retrieval_sizes(env, o, p.rows, p.cols, p.dim);
  p.k = size_option(o, "k");
  if (p.k > p.cols) throw_bad_argument(env, ErrorKind::Range, "k", "must be in [1, cols]");
  if (static_cast<double>(p.rows) * static_cast<double>(p.k) > 4294967295.0)
    throw_bad_argument(env, ErrorKind::Range, "rows * k", "more than one typed array holds");
  p.queries = float_array_of_length(info[0], "queries", p.rows * p.dim).data;
  p.gallery = float_array_of_length(info[1], "gallery", p.cols * p.dim).data;
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  Int32Array indices;
  FloatArray scores;
  guard(env, [&] {
    indices = Int32Array(env, p.rows * p.k, "the top-k indices");
    scores = FloatArray(env, p.rows * p.k, "the top-k scores");
    top_k(indices.data(), scores.data(), p);
  });
  Napi::Object result = Napi::Object::New(env);
  result.Set("indices", indices.value());
  result.Set("scores", scores.value());
  return result;
}

// retrievalMetrics(queries, gallery, { rows, cols, dim, targets, ks?, normalize?, threads? })
Napi::Value RetrievalMetrics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_argument(info, 2, "options");
  RetrievalParams p;
  read_retrieval_sizes(env, o, p.rows, p.cols, p.dim);
  p.queries = float_array_of_length(info[0], "queries", p.rows * p.dim).data;
  p.gallery = float_array_of_length(info[1], "gallery", p.cols * p.dim).data;
  p.targets = int32_array_of_length(o.Get("targets"), "targets", p.rows).data;
  Napi::Value ks = o.Get("ks");
  if (!ks.IsUndefined()) {
    if (!ks.IsArray()) throw_bad_argument(env, ErrorKind::Type, "ks", "expected an Array");
    auto a = ks.As<Napi::Array>();
    p.ks.clear();
    for (uint32_t n = 0; n < a.Length(); ++n) {
      Napi::Value v = a.Get(n);
      const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
      if (!v.IsNumber() || !(d >= 1) || d != std::floor(d) || d > 9007199254740991.0)
        throw_bad_argument(env, ErrorKind::Range, "ks", "expected positive whole numbers");
      p.ks.push_back(static_cast<int64_t>(d));
    }
  }
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  Int32Array ranks;
  RetrievalOutputs out;
  guard(env, [&] {
    ranks = Int32Array(env, p.rows, "the ranks");
    out.ranks = ranks.data();
    retrieval_metrics(out, p);
  });
  Napi::Object recall = Napi::Object::New(env);
  for (size_t n = 0; n < p.ks.size(); ++n) recall.Set(Napi::Number::New(env, static_cast<double>(p.ks[n])), out.recall[n]);
  Napi::Object result = Napi::Object::New(env);
  result.Set("recall", recall);
  result.Set("medianRank", out.median_rank);
  result.Set("meanRank", out.mean_rank);
  result.Set("ranks", ranks.value());
  return result;
}

}  // namespace mbvr::binding
