// The core's entry points: the memory-safety checks, thread count, and the choice of
// backend.
#include "mbvr.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "validation.h"

namespace mbvr {

Error bad_argument(ErrorKind kind, const std::string& name, const std::string& problem) {
  return Error(kind, "mbvr: " + name + ": " + problem);
}

Error out_of_memory(double bytes, const std::string& what) {
  char size[64];
  if (bytes >= 1 << 30)
    std::snprintf(size, sizeof size, "%.0f bytes (%.1f GiB)", bytes, bytes / (1 << 30));
  else
    std::snprintf(size, sizeof size, "%.0f bytes (%.1f MiB)", bytes, bytes / (1 << 20));
  return Error(ErrorKind::Generic, std::string("mbvr: out of memory: could not allocate ") + size + " for " + what);
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

Backend choose_backend(Backend requested, Precision precision, const CudaInfo& cuda) {
  if (requested == Backend::Cpu) {
    if (precision == Precision::Tf32) throw bad_argument(ErrorKind::Range, "precision", "tf32 is CUDA-only");
    return Backend::Cpu;
  }
  if (requested == Backend::Cuda) {
    if (!cuda.available) throw Error(ErrorKind::Generic, "The CUDA backend is unavailable: " + cuda.reason);
    return Backend::Cuda;
  }
  return cuda.available ? Backend::Cuda : Backend::Cpu;
}

void check_loss_sizes(const LossParams& p) {
  require_positive_size(p.batch, "batch");
  require_positive_size(p.dim, "dim");
  require_size_product(p.batch, p.dim, std::max<int64_t>(p.k, 1), "batch * k * dim");
  if (p.row0 < 0 || p.query_rows() < 0 || p.row0 > p.batch || p.query_rows() > p.batch - p.row0)
    throw bad_argument(ErrorKind::Range, "rows", "the shard must lie inside the batch");
  if (p.query_rows() > 0) require_input(p.query, "query");
  require_input(p.fused, "fused");
  if (p.alpha > 0) require_input(p.visual, "visual");
  if (p.beta > 0) require_input(p.text, "text");
  if (p.gamma > 0 && p.query_rows() > 0) require_input(p.shuffled, "shuffled");
  if (p.shuffled) require_positive_size(p.k, "k");
  if (!(p.temperature > 0)) throw bad_argument(ErrorKind::Range, "temperature", "must be > 0");
}

void loss(LossOutputs& out, const LossParams& p) {
  check_loss_sizes(p);
  if (p.row0 != 0 || p.query_rows() != p.batch)
    throw bad_argument(ErrorKind::Range, "rows", "loss() takes the whole batch; a shard goes through LossShard");
  if (choose_backend(p.backend, p.precision, cuda::info()) == Backend::Cuda)
    cuda::loss(out, p);
  else
    cpu::loss(out, p);
}

void similarity(float* out, const SimilarityParams& p) {
  require_positive_size(p.rows, "rows");
  require_positive_size(p.cols, "cols");
  require_positive_size(p.dim, "dim");
  require_size_product(p.rows, p.cols, 1, "rows * cols");
  require_size_product(std::max(p.rows, p.cols), p.dim, 1, "rows * dim");
  require_input(p.a, "a");
  require_input(p.b, "b");
  require_input(out, "out");
  cpu::similarity(out, p);
}

void shuffled_logits(float* out, const ShuffledLogitsParams& p) {
  require_positive_size(p.batch, "batch");
  require_positive_size(p.dim, "dim");
  require_positive_size(p.k, "k");
  require_size_product(p.batch, p.dim, p.k, "batch * k * dim");
  require_input(p.query, "query");
  require_input(p.shuffled, "shuffled");
  require_input(out, "out");
  cpu::shuffled_logits(out, p);
}

CudaInfo cuda_info() { return cuda::info(); }
CpuInfo cpu_info() { return cpu::info(); }

}  // namespace mbvr
