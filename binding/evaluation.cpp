#include "evaluation.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../cpp/evaluation.h"
#include "convert.h"

namespace mbvr::binding {
namespace {

[[noreturn]] void fail_range(Napi::Env env, const char* name, const std::string& expected, const std::string& actual) {
  throw to_js_error(env, ErrorKind::Range, invalid_parameter(ErrorKind::Range, name, expected, actual).what());
}

// batch and dim of an inputs object, with batch * dim small enough to index.
void read_batch_dim(Napi::Env env, Napi::Object inputs, int64_t& batch, int64_t& dim) {
  batch = size_option(inputs, "batch");
  dim = size_option(inputs, "dim");
  if (static_cast<double>(batch) * static_cast<double>(dim) > 9007199254740991.0)
    throw to_js_error(env, ErrorKind::Range, "batch * dim is too large");
}

// rows, cols, dim of a retrieval call: cols fits Int32Array indices.
void read_retrieval_sizes(Napi::Env env, Napi::Object o, int64_t& rows, int64_t& cols, int64_t& dim) {
  rows = size_option(o, "rows");
  cols = size_option(o, "cols");
  dim = size_option(o, "dim");
  if (cols > 2147483647)
    fail_range(env, "cols", "at most 2147483647 gallery rows (Int32Array indices)", std::to_string(cols));
  if (static_cast<double>(std::max(rows, cols)) * static_cast<double>(dim) > 9007199254740991.0)
    throw to_js_error(env, ErrorKind::Range, "rows * dim or cols * dim is too large");
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
  p.visual = float_array_of_length(env, in.Get("visual"), "visual", n, "batch * dim").data;
  p.text = float_array_of_length(env, in.Get("text"), "text", n, "batch * dim").data;
  p.fused = float_array_of_length(env, in.Get("fused"), "fused", n, "batch * dim").data;
  auto rvt = Napi::Float32Array::New(env, static_cast<size_t>(p.batch));
  auto cv = Napi::Float32Array::New(env, static_cast<size_t>(p.batch));
  auto ct = Napi::Float32Array::New(env, static_cast<size_t>(p.batch));
  ModalityBalanceOutputs out;
  out.rvt = rvt.Data();
  out.cos_visual = cv.Data();
  out.cos_text = ct.Data();
  guard(env, [&] { modality_balance(out, p); });
  Napi::Object result = Napi::Object::New(env);
  result.Set("rvt", rvt);
  result.Set("cosVisual", cv);
  result.Set("cosText", ct);
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
  p.query = float_array_of_length(env, in.Get("query"), "query", n, "batch * dim").data;
  p.fused = float_array_of_length(env, in.Get("fused"), "fused", n, "batch * dim").data;
  FloatArray s = float_array(env, in.Get("shuffled"), "shuffled");
  if (s.length == 0 || s.length % n != 0)
    fail_range(env, "shuffled",
               "a Float32Array of length batch * k * dim (a whole multiple of " + std::to_string(n) + ")",
               "length " + std::to_string(s.length));
  p.shuffled = s.data;
  p.k = s.length / n;
  auto positive = Napi::Float32Array::New(env, static_cast<size_t>(p.batch));
  auto shuffled = Napi::Float32Array::New(env, static_cast<size_t>(p.batch * p.k));
  ScoreSeparationOutputs out;
  out.positive = positive.Data();
  out.shuffled = shuffled.Data();
  guard(env, [&] { score_separation(out, p); });
  Napi::Object result = Napi::Object::New(env);
  result.Set("positive", positive);
  result.Set("shuffled", shuffled);
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
  if (p.k > p.cols)
    fail_range(env, "k", "an integer between 1 and cols (" + std::to_string(p.cols) + ")", std::to_string(p.k));
  if (static_cast<double>(p.rows) * static_cast<double>(p.k) > 4294967295.0)
    fail_range(env, "rows * k", "at most 2^32 - 1 outputs (one typed array)",
               std::to_string(p.rows) + " * " + std::to_string(p.k));
  p.queries = float_array_of_length(env, info[0], "queries", p.rows * p.dim, "rows * dim").data;
  p.gallery = float_array_of_length(env, info[1], "gallery", p.cols * p.dim, "cols * dim").data;
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  auto indices = Napi::Int32Array::New(env, static_cast<size_t>(p.rows * p.k));
  auto scores = Napi::Float32Array::New(env, static_cast<size_t>(p.rows * p.k));
  guard(env, [&] { top_k(indices.Data(), scores.Data(), p); });
  Napi::Object result = Napi::Object::New(env);
  result.Set("indices", indices);
  result.Set("scores", scores);
  return result;
}

// retrievalMetrics(queries, gallery, { rows, cols, dim, targets, ks?, normalize?, threads? })
Napi::Value RetrievalMetrics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_argument(info, 2, "options");
  RetrievalParams p;
  read_retrieval_sizes(env, o, p.rows, p.cols, p.dim);
  p.queries = float_array_of_length(env, info[0], "queries", p.rows * p.dim, "rows * dim").data;
  p.gallery = float_array_of_length(env, info[1], "gallery", p.cols * p.dim, "cols * dim").data;
  Napi::Value targets = o.Get("targets");
  if (!targets.IsTypedArray() || targets.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw to_js_error(env, ErrorKind::Type,
                      invalid_parameter(ErrorKind::Type, "targets", "an Int32Array", "another value").what());
  auto t = targets.As<Napi::Int32Array>();
  if (static_cast<int64_t>(t.ElementLength()) != p.rows)
    fail_range(env, "targets", "an Int32Array of length " + std::to_string(p.rows) + " (rows)",
               "length " + std::to_string(t.ElementLength()));
  p.targets = t.Data();
  Napi::Value ks = o.Get("ks");
  if (!ks.IsUndefined()) {
    if (!ks.IsArray())
      throw to_js_error(env, ErrorKind::Type,
                        invalid_parameter(ErrorKind::Type, "ks", "an Array of positive integers", "another value").what());
    auto a = ks.As<Napi::Array>();
    p.ks.clear();
    for (uint32_t n = 0; n < a.Length(); ++n) {
      Napi::Value v = a.Get(n);
      const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
      if (!v.IsNumber() || !(d >= 1) || d != std::floor(d) || d > 9007199254740991.0)
        fail_range(env, "ks", "an Array of positive integers", "a bad entry at index " + std::to_string(n));
      p.ks.push_back(static_cast<int64_t>(d));
    }
  }
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  auto ranks = Napi::Int32Array::New(env, static_cast<size_t>(p.rows));
  RetrievalOutputs out;
  out.ranks = ranks.Data();
  guard(env, [&] { retrieval_metrics(out, p); });
  Napi::Object recall = Napi::Object::New(env);
  for (size_t n = 0; n < p.ks.size(); ++n) recall.Set(Napi::Number::New(env, static_cast<double>(p.ks[n])), out.recall[n]);
  Napi::Object result = Napi::Object::New(env);
  result.Set("recall", recall);
  result.Set("medianRank", out.median_rank);
  result.Set("meanRank", out.mean_rank);
  result.Set("ranks", ranks);
  return result;
}

}  // namespace mbvr::binding
