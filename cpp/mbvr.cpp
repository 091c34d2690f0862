// The core's entry points: validation, thread count, and the choice of backend.
#include "mbvr.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>
#include <sstream>
#include <thread>

#include "cpu/cpu_backend.h"
#include "cpu/thread_pool.h"
#include "cuda/cuda_backend.h"

namespace mbvr {

Error invalid_parameter(ErrorKind kind, const std::string& name, const std::string& expected,
                        const std::string& actual) {
  return Error(kind, "Expected " + expected + " for " + name + " but received " + actual);
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Auto: return "auto";
    case Backend::Cpu: return "cpu";
    case Backend::Cuda: return "cuda";
  }
  return "?";
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Fp32: return "fp32";
    case Precision::Tf32: return "tf32";
    case Precision::Bf16: return "bf16";
  }
  return "?";
}

int resolve_threads(int requested) {
  constexpr int kMax = 1024;
  if (requested > 0) return std::min(requested, kMax);
  if (const char* env = std::getenv("MBVR_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0) return static_cast<int>(std::min<long>(n, kMax));
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, kMax));
}

namespace {

// As JavaScript prints numbers: NaN and Infinity rather than nan and inf.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  for (int digits = 1;; ++digits) {  // the shortest text that reads back as v
    std::ostringstream s;
    s.precision(digits);
    s << v;
    if (digits >= 17 || std::stod(s.str()) == v) return s.str();
  }
}

// Throws a RangeError naming `name` at the first NaN or infinity of x[0..n).
void require_finite(const float* x, int64_t n, const char* name, int threads) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> first_bad(chunks, -1);
  cpu::parallel_for(threads, chunks, [&](int64_t c, int) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    bool bad = false;
    for (int64_t i = c * kChunk; i < end; ++i) bad |= !std::isfinite(x[i]);
    if (!bad) return;
    for (int64_t i = c * kChunk; i < end; ++i)
      if (!std::isfinite(x[i])) {
        first_bad[c] = i;
        return;
      }
  });
  for (int64_t c = 0; c < chunks; ++c)
    if (first_bad[c] >= 0) {
      const int64_t i = first_bad[c];
      throw invalid_parameter(ErrorKind::Range, name, "finite numbers",
                              number(x[i]) + " at index " + std::to_string(i));
    }
}

// The largest Euclidean row norm of x (rows x dim), in double.
double max_row_norm(const float* x, int64_t rows, int64_t dim, int threads) {
  constexpr int64_t kRows = 256;
  const int64_t chunks = (rows + kRows - 1) / kRows;
  std::vector<double> largest(chunks, 0.0);
  cpu::parallel_for(threads, chunks, [&](int64_t c, int) {
    for (int64_t i = c * kRows; i < std::min(rows, (c + 1) * kRows); ++i) {
      double ss = 0;
      for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(x[i * dim + d]) * x[i * dim + d];
      largest[c] = std::max(largest[c], ss);
    }
  });
  return std::sqrt(*std::max_element(largest.begin(), largest.end()));
}

// Without normalisation the kernels form q . x and (q . x - margin) / tau in float32:
// refuse rows so large that these could overflow (|q . x| <= |q| |x|), rather than
// return infinities.
void require_representable_logits(const LossParams& p, int threads) {
  constexpr double kLimit = 1e30;  // far below FLT_MAX (3.4e38), leaving room for sums
  const double q = max_row_norm(p.query, p.batch, p.dim, threads);
  const std::pair<const float*, const char*> docs[] = {
      {p.fused, "fused"}, {p.visual, "visual"}, {p.text, "text"}, {p.shuffled, "shuffled"}};
  double margin = std::abs(p.margin);
  if (p.margin_per_row)
    for (int64_t i = 0; i < p.batch; ++i) margin = std::max(margin, std::abs(static_cast<double>(p.margin_per_row[i])));
  for (const auto& [x, name] : docs) {
    if (!x) continue;
    const int64_t rows = x == p.shuffled ? p.batch * p.k : p.batch;
    const double bound = q * max_row_norm(x, rows, p.dim, threads) + margin;
    if (bound > kLimit || bound / p.temperature > kLimit)
      throw invalid_parameter(
          ErrorKind::Range, std::string("query and ") + name,
          "rows whose dot products divided by temperature stay below 1e30 when normalize is false "
          "(pass normalize: true or rescale the rows)",
          "row norms up to " + number(q) + " and " + number(bound / std::max(q, 1e-300)) + " with temperature " +
              number(p.temperature));
  }
}

void require_positive_size(int64_t v, const char* name) {
  if (v < 1) throw invalid_parameter(ErrorKind::Range, name, "an integer >= 1", std::to_string(v));
}

void require_weight(double w, const char* name) {
  if (!std::isfinite(w) || w < 0)
    throw invalid_parameter(ErrorKind::Range, name, "a finite number >= 0", number(w));
}

void require_temperature(double t) {
  if (!std::isfinite(t) || t <= 0)
    throw invalid_parameter(ErrorKind::Range, "temperature", "a finite number > 0", number(t));
}

// a * b * c fits in int64 with room to spare (element counts, then bytes).
void require_size_product(int64_t a, int64_t b, int64_t c, const char* what) {
  const double elements = static_cast<double>(a) * static_cast<double>(b) * static_cast<double>(c);
  if (elements > static_cast<double>(std::numeric_limits<int64_t>::max() / 8))
    throw invalid_parameter(ErrorKind::Range, what, "an element count below 2^60",
                            number(elements));
}

Backend choose_backend(Backend requested, Precision precision) {
  if (requested == Backend::Cpu) {
    if (precision != Precision::Fp32)
      throw invalid_parameter(ErrorKind::Range, "precision",
                              "'fp32' with backend 'cpu' (tf32 and bf16 are CUDA-only)",
                              std::string("'") + precision_name(precision) + "'");
    return Backend::Cpu;
  }
  const CudaInfo info = cuda::info();
  if (requested == Backend::Cuda) {
    if (!info.available) throw Error(ErrorKind::Generic, "The CUDA backend is unavailable: " + info.reason);
    return Backend::Cuda;
  }
  return info.available ? Backend::Cuda : Backend::Cpu;
}

}  // namespace

void validate(const LossParams& p) {
  require_positive_size(p.batch, "batch");
  require_positive_size(p.dim, "dim");
  require_size_product(p.batch, p.dim, std::max<int64_t>(p.k, 1), "batch * k * dim");
  if (!p.query) throw invalid_parameter(ErrorKind::Type, "query", "a Float32Array", "nothing");
  if (!p.fused) throw invalid_parameter(ErrorKind::Type, "fused", "a Float32Array", "nothing");
  require_temperature(p.temperature);
  require_weight(p.alpha, "alpha");
  require_weight(p.beta, "beta");
  require_weight(p.gamma, "gamma");
  if (!std::isfinite(p.margin))
    throw invalid_parameter(ErrorKind::Range, "margin", "a finite number", number(p.margin));
  if (p.alpha > 0 && !p.visual)
    throw invalid_parameter(ErrorKind::Type, "visual",
                            "a Float32Array when alpha > 0 (pass alpha: 0 to drop L_v)", "nothing");
  if (p.beta > 0 && !p.text)
    throw invalid_parameter(ErrorKind::Type, "text",
                            "a Float32Array when beta > 0 (pass beta: 0 to drop L_t)", "nothing");
  if (p.gamma > 0 && !p.shuffled)
    throw invalid_parameter(ErrorKind::Type, "shuffled",
                            "a Float32Array when gamma > 0 (pass gamma: 0 to drop L_ms)", "nothing");
  if (p.shuffled && p.k < 1) require_positive_size(p.k, "k");

  const int threads = resolve_threads(p.threads);
  const int64_t n = p.batch * p.dim;
  require_finite(p.query, n, "query", threads);
  require_finite(p.fused, n, "fused", threads);
  if (p.visual) require_finite(p.visual, n, "visual", threads);
  if (p.text) require_finite(p.text, n, "text", threads);
  if (p.shuffled) require_finite(p.shuffled, n * p.k, "shuffled", threads);
  if (p.margin_per_row) require_finite(p.margin_per_row, p.batch, "margin", threads);
  if (!p.normalize) require_representable_logits(p, threads);
}

void loss(LossOutputs& out, const LossParams& p) {
  validate(p);
  const Backend backend = choose_backend(p.backend, p.precision);
  if (backend == Backend::Cuda) {
    cuda::loss(out, p);
  } else {
    cpu::loss(out, p);
  }
}

void similarity(float* out, const SimilarityParams& p) {
  require_positive_size(p.rows, "rows");
  require_positive_size(p.cols, "cols");
  require_positive_size(p.dim, "dim");
  require_size_product(p.rows, p.cols, 1, "rows * cols");
  require_size_product(std::max(p.rows, p.cols), p.dim, 1, "rows * dim");
  require_temperature(p.temperature);
  const int threads = resolve_threads(p.threads);
  require_finite(p.a, p.rows * p.dim, "a", threads);
  require_finite(p.b, p.cols * p.dim, "b", threads);
  cpu::similarity(out, p);
}

void shuffled_logits(float* out, const ShuffledLogitsParams& p) {
  require_positive_size(p.batch, "batch");
  require_positive_size(p.dim, "dim");
  require_positive_size(p.k, "k");
  require_size_product(p.batch, p.dim, p.k, "batch * k * dim");
  require_temperature(p.temperature);
  const int threads = resolve_threads(p.threads);
  require_finite(p.query, p.batch * p.dim, "query", threads);
  require_finite(p.shuffled, p.batch * p.k * p.dim, "shuffled", threads);
  cpu::shuffled_logits(out, p);
}

CudaInfo cuda_info() { return cuda::info(); }

}  // namespace mbvr
