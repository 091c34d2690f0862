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
#include "validation.h"
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

void require_weight(double w, const char* name) {
  if (!std::isfinite(w) || w < 0)
    throw invalid_parameter(ErrorKind::Range, name, "a finite number >= 0", number(w));
}

void require_temperature(double t) {
  if (!std::isfinite(t) || t <= 0)
    throw invalid_parameter(ErrorKind::Range, "temperature", "a finite number > 0", number(t));
}

Backend choose_backend(Backend requested, Precision precision) {
  if (requested == Backend::Cpu) {
    if (precision == Precision::Tf32)
      throw invalid_parameter(ErrorKind::Range, "precision",
                              "'fp32' or 'bf16' with backend 'cpu' (tf32 is CUDA-only)", "'tf32'");
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
CpuInfo cpu_info() { return cpu::info(); }

}  // namespace mbvr
