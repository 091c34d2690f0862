#include "similarity.h"

#include "convert.h"

namespace mbvr::binding {

// similarity(a, b, { rows, cols, dim, temperature?, normalize?, threads? })
Napi::Value Similarity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_argument(info, 2, "options");
  SimilarityParams p;
  p.rows = size_option(o, "rows");
  p.cols = size_option(o, "cols");
  p.dim = size_option(o, "dim");
  if (static_cast<double>(p.rows) * static_cast<double>(p.cols) > 4294967295.0)
    throw to_js_error(env, ErrorKind::Range,
                      invalid_parameter(ErrorKind::Range, "rows * cols", "at most 2^32 - 1 outputs (one Float32Array)",
                                        std::to_string(p.rows) + " * " + std::to_string(p.cols))
                          .what());
  p.a = float_array_of_length(env, info[0], "a", p.rows * p.dim, "rows * dim").data;
  p.b = float_array_of_length(env, info[1], "b", p.cols * p.dim, "cols * dim").data;
  p.temperature = number_option(o, "temperature", 1.0);
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(p.rows * p.cols));
  guard(env, [&] { similarity(out.Data(), p); });
  return out;
}

// shuffledLogits(query, shuffled, { batch, dim, temperature?, normalize?, threads? })
Napi::Value ShuffledLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_argument(info, 2, "options");
  ShuffledLogitsParams p;
  p.batch = size_option(o, "batch");
  p.dim = size_option(o, "dim");
  const int64_t n = p.batch * p.dim;
  p.query = float_array_of_length(env, info[0], "query", n, "batch * dim").data;
  FloatArray s = shuffled_array(env, info[1], n);
  p.shuffled = s.data;
  p.k = s.length / n;
  p.temperature = number_option(o, "temperature", 0.05);
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(p.batch * p.k));
  guard(env, [&] { shuffled_logits(out.Data(), p); });
  return out;
}

}  // namespace mbvr::binding
