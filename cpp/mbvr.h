// mbvr compute core: the modality-balanced contrastive loss of MBVR (Wang et al.,
// SIGIR 2022) and its gradients. No Node.js dependency: the binding in ../binding fills
// these structs and calls the functions below; the CPU backend (cpu/) and the CUDA
// backend (cuda/) implement them with the same structure and names.
//
// The math is ../shared/docs/SPEC.md section 2 (copied into the README). Shapes:
//   query, fused, visual, text: B x D row-major;  shuffled: B x K x D row-major.
// Rule for outputs: every gradient buffer is written with `=` (fully overwritten),
// never accumulated into, so callers may pass uninitialised memory.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mbvr {

// ---------------------------------------------------------------------------
// Errors. The core throws mbvr::Error; the binding turns kind into the JS class.

enum class ErrorKind { Type, Range, Generic };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind(kind) {}
  ErrorKind kind;
};

// "Expected <expected> for <name> but received <actual>" — the one wording used by the
// TypeScript layer too (src/errors.ts), so a message reads the same whichever layer
// caught the problem.
Error invalid_parameter(ErrorKind kind, const std::string& name, const std::string& expected,
                        const std::string& actual);

// ---------------------------------------------------------------------------
// Options shared by every entry point.

enum class Backend { Auto, Cpu, Cuda };
enum class Precision { Fp32, Tf32, Bf16 };

const char* backend_name(Backend b);
const char* precision_name(Precision p);

// ---------------------------------------------------------------------------
// The loss: one params struct per direction (inputs + options in, outputs out).

struct LossParams {
  // Inputs: never written. visual/text/shuffled may be null when their weight is 0.
  const float* query = nullptr;     // B x D
  const float* fused = nullptr;     // B x D
  const float* visual = nullptr;    // B x D
  const float* text = nullptr;      // B x D
  const float* shuffled = nullptr;  // B x K x D
  int64_t batch = 0;                // B
  int64_t dim = 0;                  // D
  int64_t k = 0;                    // K (0 when shuffled is null)

  double temperature = 0.05;
  double alpha = 1.0;  // weight of L_v
  double beta = 1.0;   // weight of L_t
  double gamma = 1.0;  // weight of L_ms
  double margin = 0.0;                    // delta for every row, unless...
  const float* margin_per_row = nullptr;  // ...this (length B) is given
  const int32_t* labels = nullptr;        // length B, or null
  bool normalize = true;
  bool grads = true;

  Backend backend = Backend::Auto;
  Precision precision = Precision::Fp32;
  int threads = 0;  // CPU worker threads; 0 = MBVR_THREADS or all cores
  // CPU: bytes the fused logits may occupy to save their recomputation (B^2 * 4 bytes
  // needed; all or nothing). -1 = MBVR_LOGIT_CACHE_BYTES, else 80 MiB; 0 = never.
  int64_t logit_cache_bytes = -1;
};

struct LossTerms {
  double qm = 0, mq = 0, v = 0, t = 0, ms = 0;
};

struct LossOutputs {
  // Gradient buffers, allocated by the caller with the shapes of the inputs; a null
  // pointer means "not wanted". Written only when params.grads is true.
  float* d_query = nullptr;
  float* d_fused = nullptr;
  float* d_visual = nullptr;
  float* d_text = nullptr;
  float* d_shuffled = nullptr;
  // Scalars, always written.
  double d_temperature = 0.0;
  double loss = 0.0;
  LossTerms terms;
  Backend backend_used = Backend::Cpu;
  // The precision the products ran at: the requested one, or a more exact one where the
  // requested one could not meet SPEC's bound or has no hardware here (CPU: bf16 at a
  // small tau sqrt(D), or without AVX512-BF16, runs fp32; tf32 falling back to the CPU
  // runs fp32; CUDA: bf16 at a small tau sqrt(D) runs tf32).
  Precision precision_used = Precision::Fp32;
};

// Checks sizes, options and that every input is finite; throws mbvr::Error naming the
// argument. Called by loss() itself, so the core is safe to call directly.
void validate(const LossParams& p);

// Computes the loss (and gradients). Throws mbvr::Error on bad input or when the
// requested backend is unusable.
void loss(LossOutputs& out, const LossParams& p);

// ---------------------------------------------------------------------------
// Building blocks exposed to JavaScript.

struct SimilarityParams {
  const float* a = nullptr;  // rows x dim
  const float* b = nullptr;  // cols x dim
  int64_t rows = 0, cols = 0, dim = 0;
  double temperature = 1.0;
  bool normalize = true;
  int threads = 0;
};
// out: rows x cols, out[i*cols + j] = c(a_i, b_j) / temperature (SPEC section 2).
void similarity(float* out, const SimilarityParams& p);

struct ShuffledLogitsParams {
  const float* query = nullptr;     // B x D
  const float* shuffled = nullptr;  // B x K x D
  int64_t batch = 0, dim = 0, k = 0;
  double temperature = 0.05;
  bool normalize = true;
  int threads = 0;
};
// out: B x K, out[i*K + k] = c(q_i, s_ik) / temperature.
void shuffled_logits(float* out, const ShuffledLogitsParams& p);

// ---------------------------------------------------------------------------
// Backends.

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  uint64_t total_memory = 0;
};

struct CudaInfo {
  bool compiled = false;   // the addon was built with CUDA
  bool available = false;  // a usable device and driver were found
  std::string reason;      // why not, when !available
  std::vector<DeviceInfo> devices;
  int runtime_version = 0, driver_version = 0;
};

CudaInfo cuda_info();

struct CpuInfo {
  int threads = 0;             // the default worker count
  std::string simd;            // the widest vector ISA in use: avx512, avx2, baseline, portable
  std::string gemm;            // the fp32 microkernel in use ("avx512 12x32", ...)
  std::string bf16_gemm;       // the bf16 microkernel in use
  bool bf16_native = false;    // bf16 products run in hardware (AVX512-BF16), not emulated
};

CpuInfo cpu_info();

// Worker threads the CPU backend uses for `requested` (0 = MBVR_THREADS, else all cores).
int resolve_threads(int requested);

}  // namespace mbvr
