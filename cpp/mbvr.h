// mbvr compute core: the modality-balanced contrastive loss of MBVR (Wang et al.,
// SIGIR 2022) and its gradients. No Node.js dependency: the binding in ../binding fills
// these structs and calls the functions below; the CPU backend (cpu/) and the CUDA
// backend (cuda/) implement them with the same decomposition, on the per-element math of
// loss_math.h.
//
// The math is docs/math.md (§2 the loss, §3 its gradients, §6 data parallel). Shapes:
//   query, fused, visual, text: B x D row-major;  shuffled: B x K x D row-major.
// Rule for outputs: every gradient buffer is written with `=` (fully overwritten),
// never accumulated into, so callers may pass uninitialised memory.
//
// Checks: the core trusts values (user-facing validation and its wording live in the
// TypeScript layer, src/); it checks only what memory safety needs (sizes, pointers),
// with terse messages: check_loss_sizes and friends.
#pragma once

#include <cstdint>
#include <memory>
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

// A memory-safety check failed: "mbvr: <name>: <problem>" (terse; users meet the
// TypeScript layer's wording first).
Error bad_argument(ErrorKind kind, const std::string& name, const std::string& problem);

// An allocation failed: "mbvr: out of memory: could not allocate <bytes> for <what>".
Error out_of_memory(double bytes, const std::string& what);

// ---------------------------------------------------------------------------
// Options shared by every entry point.

enum class Backend { Auto, Cpu, Cuda };
enum class Precision { Fp32, Tf32, Bf16 };

const char* backend_name(Backend b);
const char* precision_name(Precision p);

// ---------------------------------------------------------------------------
// The loss: one params struct per direction (inputs + options in, outputs out).

// Row-shape maxima of the inputs, for the bf16 rule (docs/math.md §5, strip_products.h):
// over the query rows (q) and over the fused, visual, text and shuffled rows in use (x),
// the largest Euclidean norm and the largest sum x^4 / (sum x^2)^2 of a nonzero row.
struct RowShapes {
  double q_norm = 0, q_fourth = 0, x_norm = 0, x_fourth = 0;
};

struct LossParams {
  // Inputs: never written. visual/text/shuffled may be null when their weight is 0.
  //
  // Data parallel (docs/math.md §6): a call may hold only the query rows
  // [row0, row0 + rows) of the batch of B, with all B documents (gathered). Then query,
  // shuffled and margin_per_row hold those `rows` rows; fused, visual, text and labels
  // hold all B. A single-process call has row0 = 0 and rows = B.
  const float* query = nullptr;     // rows x D
  const float* fused = nullptr;     // B x D
  const float* visual = nullptr;    // B x D
  const float* text = nullptr;      // B x D
  const float* shuffled = nullptr;  // rows x K x D
  int64_t batch = 0;                // B
  int64_t dim = 0;                  // D
  int64_t k = 0;                    // K (0 when shuffled is null)
  int64_t row0 = 0;                 // the first query row held
  int64_t rows = -1;                // query rows held (-1: batch)

  double temperature = 0.05;
  double alpha = 1.0;  // weight of L_v
  double beta = 1.0;   // weight of L_t
  double gamma = 1.0;  // weight of L_ms
  double margin = 0.0;                    // delta for every row, unless...
  const float* margin_per_row = nullptr;  // ...this (one per query row held) is given
  const int32_t* labels = nullptr;        // length B, or null
  bool normalize = true;
  bool grads = true;

  Backend backend = Backend::Auto;
  Precision precision = Precision::Fp32;
  int threads = 0;  // CPU worker threads; 0 = MBVR_THREADS or all cores
  // CPU: bytes the fused logits may occupy to save their recomputation (rows * B * 4
  // bytes needed; all or nothing). -1 = MBVR_LOGIT_CACHE_BYTES, else 80 MiB; 0 = never.
  int64_t logit_cache_bytes = -1;
  // bf16: the shapes the precision rule reads; null: the core scans the inputs itself. A
  // data-parallel call passes the maxima over every rank's rows, so that all ranks decide
  // alike.
  const RowShapes* shapes = nullptr;

  int64_t query_rows() const { return rows < 0 ? batch : rows; }
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
  // requested one could not meet its bound (docs/math.md §5) or has no hardware here (CPU: bf16 at a
  // small tau sqrt(D), or without AVX512-BF16, runs fp32; tf32 falling back to the CPU
  // runs fp32; CUDA: bf16 at a small tau sqrt(D) runs tf32).
  Precision precision_used = Precision::Fp32;
};

// The memory-safety checks of a loss call: positive sizes whose products fit, the inputs
// each non-zero weight needs, a shard inside the batch. Called by loss() and LossShard.
void check_loss_sizes(const LossParams& p);

// Computes the loss (and gradients) of a whole batch (row0 = 0, rows = B). Throws
// mbvr::Error when a size check fails or the requested backend is unusable.
void loss(LossOutputs& out, const LossParams& p);

// ---------------------------------------------------------------------------
// Data parallel (docs/math.md §6): the loss of a global batch split by rows, as three
// phases around the caller's collectives. On the CPU backend.

// What a shard's rows contribute to the scalars: per term the sum over its rows of the
// per-row loss (L_mq: over its documents, the same rows), and gz = the sum of
// dL/dz * z over every logit it used. The sums over all shards give the loss
// (finish_scalars).
struct LossSums {
  double qm = 0, mq = 0, v = 0, t = 0, ms = 0, gz = 0;
};

// L_mq's column statistics: per document j of the B, the (max, sum of exp) of its
// column's entries other than the positive (docs/math.md §3.1), and z_jj.
//   partial (statistics()): over the shard's queries; `positive` holds its own rows only;
//   merged (gradients()):   over all queries; `positive` holds all B.
struct ColumnStats {
  std::vector<double> max, sum;
  std::vector<float> positive;
};

class LossShard {
 public:
  // p's arrays must stay valid and unchanged until the shard is destroyed.
  explicit LossShard(const LossParams& p);
  ~LossShard();
  LossShard(const LossShard&) = delete;
  LossShard& operator=(const LossShard&) = delete;

  // Phase 1: normalisation and the fused statistics of the shard's queries.
  void statistics(ColumnStats& partial);
  // Phase 2, given the merged column statistics: out.d_query and out.d_shuffled (the
  // shard's rows) are final; out.d_fused, d_visual, d_text (B x D each, where wanted) get
  // the shard's partial sums of dL/dx^, to be summed over shards (reduce-scatter) and
  // passed to finish_documents. out.precision_used is set.
  void gradients(LossOutputs& out, LossSums& sums, const ColumnStats& merged);
  // Phase 3: in place, the summed document gradients of the shard's own rows
  // (rows x D each, null where not wanted) become dL/dx.
  void finish_documents(float* d_fused, float* d_visual, float* d_text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// out.loss, out.terms and out.d_temperature from the sums of every shard.
void finish_scalars(LossOutputs& out, const LossSums& total, const LossParams& p);

// ---------------------------------------------------------------------------
// Building blocks exposed to JavaScript.

struct SimilarityParams {
  const float* a = nullptr;  // rows x dim
  const float* b = nullptr;  // cols x dim
  int64_t rows = 0, cols = 0, dim = 0;
  double temperature = 0.05;
  bool normalize = true;
  int threads = 0;
};
// out: rows x cols, out[i*cols + j] = c(a_i, b_j) / temperature (docs/math.md §2).
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
  bool available = false;  // a usable device and driver were found, and the self-check passed
  std::string reason;      // why not, when !available
  std::vector<DeviceInfo> devices;
  int runtime_version = 0, driver_version = 0;
  // The self-check (self_check.h), run once a device is found.
  bool self_check_run = false, self_check_passed = false;
  double self_check_seconds = 0;
  std::string self_check_worst;  // the largest error relative to its bound, in words
};

CudaInfo cuda_info();

// Where a call runs: backend 'cpu', 'cuda' (throws the reason when CUDA is unavailable),
// or 'auto' (CUDA when available, else the CPU); tf32 on the CPU is refused.
Backend choose_backend(Backend requested, Precision precision, const CudaInfo& cuda);

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
