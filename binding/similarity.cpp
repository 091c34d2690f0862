#include "similarity.h"

#include "convert.h"
#include "host_buffer.h"

namespace mbvr::binding {

// similarity(a, b, { rows, cols, dim, temperature?, normalize?, threads? })
Napi::Value Similarity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_argument(info, 2, "options");
  SimilarityParams p;
  p.rows = size_option(o, "rows");
  p.cols = size_option(o, "cols");
  p.dim = size_option(o, "dim");
  const int64_t outputs = checked_product(env, p.rows, p.cols, "rows * cols");
  if (outputs > 4294967295) throw_bad_argument(env, ErrorKind::Range, "rows * cols", "more than one Float32Array holds");
  p.a = float_array_of_length(info[0], "a", checked_product(env, p.rows, p.dim, "rows * dim")).data;
  p.b = float_array_of_length(info[1], "b", checked_product(env, p.cols, p.dim, "cols * dim")).data;
  p.temperature = number_option(o, "temperature", p.temperature);
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  return guard(env, [&] {
    FloatArray m(env, outputs, "the similarity matrix");
    similarity(m.data(), p);
    return m.value();
  });
}

// shuffledLogits(query, shuffled, { batch, dim, temperature?, normalize?, threads? })
Napi::Value ShuffledLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_argument(info, 2, "options");
  ShuffledLogitsParams p;
  p.batch = size_option(o, "batch");
  p.dim = size_option(o, "dim");
  const int64_t n = checked_product(env, p.batch, p.dim, "batch * dim");
  p.query = float_array_of_length(info[0], "query", n).data;
  const ArrayView<float> s = float_array(info[1], "shuffled");
  if (s.length == 0 || s.length % n != 0)
    throw_bad_argument(env, ErrorKind::Range, "shuffled", "length must be a whole multiple of batch * dim");
  p.shuffled = s.data;
  p.k = s.length / n;
  p.temperature = number_option(o, "temperature", p.temperature);
  p.normalize = bool_option(o, "normalize", true);
  p.threads = threads_option(o);
  return guard(env, [&] {
    FloatArray m(env, p.batch * p.k, "the shuffled logits");
    shuffled_logits(m.data(), p);
    return m.value();
  });
}

}  // namespace mbvr::binding
