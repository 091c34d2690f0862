// MBVR loss and gradients on the CPU (SPEC section 2), in O(B*D) memory.
//
// Notation: Q^, M^, V^, T^ are the (normalised) query, fused, visual and text rows,
// S^ the shuffled rows; z = c / tau are logits. The batch is cut into P blocks of `bs`
// rows; tile (r, c) holds the logits of query block r against document block c.
//
//   pass 1 (statistics)  for each tile: S = Q^_r X^_c^T for X in {M, V, T}; merge
//                        online log-sum-exps into the row stats of block r (all terms)
//                        and the column stats of block c (fused only, for L_mq).
//   MS term              per row: K dot products, log-sum-exp with the positive.
//   pass 2 (gradients)   for each tile: recompute S, turn it into G = dL/dz in place,
//                        dQ^_r += G X^_c  and  dX^_c += G^T Q^_r.
//   finish               MS gradients, / tau, normalisation backward.
//
// Cost: 12 GEMM-equivalents of 2*B^2*D flops (3 + 3 recompute + 3 + 3), see
// shared KERNEL-NOTES.md. No B x B buffer: per worker, three bs x bs tiles.
//
// Determinism without atomics: tiles run in P "wavefront" steps; step s runs tiles
// (r, (r + s) mod P) for every r in parallel. Within a step no two tiles share a row
// block or a column block, so each tile owns the statistics and gradient rows it
// touches, and every row/column accumulates its tiles in the same order (s = 0, 1, ...)
// whatever the number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu_backend.h"
#include "normalize.h"
#include "softmax_tiles.h"
#include "thread_pool.h"
#include "tile_gemm.h"

namespace mbvr::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Rows per block: large enough for efficient tile products, small enough that the
// three tiles of a worker stay in L2. Depends on B only, never on the thread count.
int64_t block_rows(int64_t batch) { return batch > 8192 ? 256 : 128; }

enum Term { kFused = 0, kVisual = 1, kText = 2, kTerms = 3 };

struct Workspace {
  std::vector<float> tile[kTerms];  // bs x bs logits, then gradients
  std::vector<float> packed;        // D x bs, a document tile transposed
  std::vector<float> colmax;        // bs
};

class LossRun {
 public:
  LossRun(LossOutputs& out, const LossParams& p)
      : out_(out), p_(p), B_(p.batch), D_(p.dim), K_(p.k),
        threads_(resolve_threads(p.threads)), bs_(block_rows(p.batch)),
        blocks_((p.batch + bs_ - 1) / bs_), inv_tau_(1.0 / p.temperature) {
    active_[kFused] = true;
    active_[kVisual] = p.alpha > 0;
    active_[kText] = p.beta > 0;
    use_ms_ = p.gamma > 0;
    weight_[kFused] = 1.0;
    weight_[kVisual] = p.alpha;
    weight_[kText] = p.beta;
  }

  void run() {
    normalize_inputs();
    allocate_statistics();
    statistics_pass();
    shuffled_term();
    compute_loss();
    if (p_.grads) {
      gradient_pass();
      finish_gradients();
    }
    out_.backend_used = Backend::Cpu;
  }

 private:
  // ---- set-up --------------------------------------------------------------------

  void normalize_inputs() {
    const float* docs[kTerms] = {p_.fused, p_.visual, p_.text};
    normalize_rows_forward(query_, p_.query, B_, D_, p_.normalize, threads_);
    for (int t = 0; t < kTerms; ++t)
      if (active_[t]) normalize_rows_forward(doc_[t], docs[t], B_, D_, p_.normalize, threads_);
    if (use_ms_) normalize_rows_forward(shuffled_, p_.shuffled, B_ * K_, D_, p_.normalize, threads_);
  }

  void allocate_statistics() {
    const LseState empty{-std::numeric_limits<double>::infinity(), 0.0};
    for (int t = 0; t < kTerms; ++t) {
      if (!active_[t]) continue;
      row_lse_[t].assign(B_, empty);
      positive_[t].assign(B_, 0.0f);
    }
    col_lse_.assign(B_, empty);
    workspace_.resize(threads_);
    for (auto& ws : workspace_) {
      for (int t = 0; t < kTerms; ++t)
        if (active_[t]) ws.tile[t].resize(bs_ * bs_);
      ws.packed.resize(D_ * bs_);
      ws.colmax.resize(bs_);
    }
  }

  double margin(int64_t i) const {
    return p_.margin_per_row ? static_cast<double>(p_.margin_per_row[i]) : p_.margin;
  }

  // ---- tiles ---------------------------------------------------------------------

  int64_t block_start(int64_t b) const { return b * bs_; }
  int64_t block_len(int64_t b) const { return std::min(bs_, B_ - b * bs_); }

  // ws.tile[t] (nr x nc, stride nc) = logits of query block r against block c of
  // document term t, with the margin on the positives and -inf where labels mask.
  void logits_tile(Workspace& ws, int t, int64_t r, int64_t c) const {
    const int64_t r0 = block_start(r), nr = block_len(r);
    const int64_t c0 = block_start(c), nc = block_len(c);
    float* z = ws.tile[t].data();
    pack_transposed(ws.packed.data(), doc_[t].hat + c0 * D_, nc, D_);
    std::fill(z, z + nr * nc, 0.0f);
    gemm_acc(z, nc, query_.hat + r0 * D_, D_, 1, ws.packed.data(), nc, nr, nc, D_);
    if (t == kFused && r == c)  // the margin lowers only the positives' cosines
      for (int64_t i = 0; i < nr; ++i) z[i * nc + i] -= static_cast<float>(margin(r0 + i));
    const float inv_tau = static_cast<float>(inv_tau_);
    for (int64_t i = 0; i < nr * nc; ++i) z[i] *= inv_tau;
    if (p_.labels) {
      for (int64_t i = 0; i < nr; ++i) {
        const int32_t li = p_.labels[r0 + i];
        for (int64_t j = 0; j < nc; ++j)
          if (p_.labels[c0 + j] == li && r0 + i != c0 + j) z[i * nc + j] = kNegInf;
      }
    }
  }

  // Runs fn(r, c, workspace) over all tiles, wavefront by wavefront (see top).
  template <class Fn>
  void for_each_tile(Fn fn) {
    for (int64_t s = 0; s < blocks_; ++s)
      parallel_for(threads_, blocks_, [&](int64_t r, int worker) {
        fn(r, (r + s) % blocks_, workspace_[worker]);
      });
  }

  // ---- pass 1 --------------------------------------------------------------------

  void statistics_pass() {
    for_each_tile([&](int64_t r, int64_t c, Workspace& ws) {
      const int64_t r0 = block_start(r), nr = block_len(r), nc = block_len(c);
      for (int t = 0; t < kTerms; ++t) {
        if (!active_[t]) continue;
        logits_tile(ws, t, r, c);
        const float* z = ws.tile[t].data();
        lse_update_rows(row_lse_[t].data() + r0, z, nr, nc);
        if (t == kFused) lse_update_cols(col_lse_.data() + block_start(c), z, nr, nc, ws.colmax.data());
        if (r == c)
          for (int64_t i = 0; i < nr; ++i) positive_[t][r0 + i] = z[i * nc + i];
      }
    });
  }

  static double lse_value(const LseState& s) { return s.max + std::log(s.sum); }

  // ---- the modality-shuffled term ------------------------------------------------

  // Per row: zs_ik = c(q_i, s_ik) / tau, lse_ms_i = log(e^{z_ii} + sum_k e^{zs_ik}) and
  // the softmax pi over (z_ii, zs_i1..zs_iK), kept for the gradients.
  void shuffled_term() {
    if (!use_ms_) return;
    ms_logits_.assign(B_ * K_, 0.0);
    ms_lse_.assign(B_, 0.0);
    parallel_for(threads_, blocks_, [&](int64_t b, int) {
      for (int64_t i = block_start(b); i < block_start(b) + block_len(b); ++i) {
        const float* q = query_.hat + i * D_;
        double m = positive_[kFused][i];
        for (int64_t k = 0; k < K_; ++k) {
          const float* s = shuffled_.hat + (i * K_ + k) * D_;
          double dot = 0;
          for (int64_t d = 0; d < D_; ++d) dot += static_cast<double>(q[d]) * s[d];
          ms_logits_[i * K_ + k] = dot * inv_tau_;
          m = std::max(m, ms_logits_[i * K_ + k]);
        }
        double sum = std::exp(positive_[kFused][i] - m);
        for (int64_t k = 0; k < K_; ++k) sum += std::exp(ms_logits_[i * K_ + k] - m);
        ms_lse_[i] = m + std::log(sum);
      }
    });
  }

  // ---- loss ----------------------------------------------------------------------

  void compute_loss() {
    // Per-row values summed in row order: the same bits for any thread count.
    double sum[kTerms] = {0, 0, 0}, sum_mq = 0, sum_ms = 0;
    for (int64_t i = 0; i < B_; ++i) {
      for (int t = 0; t < kTerms; ++t)
        if (active_[t]) sum[t] += lse_value(row_lse_[t][i]) - positive_[t][i];
      sum_mq += lse_value(col_lse_[i]) - positive_[kFused][i];
      if (use_ms_) sum_ms += ms_lse_[i] - positive_[kFused][i];
    }
    const double inv_b = 1.0 / static_cast<double>(B_);
    LossTerms& terms = out_.terms;
    terms.qm = sum[kFused] * inv_b;
    terms.mq = sum_mq * inv_b;
    terms.v = active_[kVisual] ? sum[kVisual] * inv_b : 0.0;
    terms.t = active_[kText] ? sum[kText] * inv_b : 0.0;
    terms.ms = use_ms_ ? sum_ms * inv_b : 0.0;
    out_.loss = terms.qm + terms.mq + p_.alpha * terms.v + p_.beta * terms.t + p_.gamma * terms.ms;
  }

  // ---- pass 2 --------------------------------------------------------------------

  float* doc_grad(int t) const {
    return t == kFused ? out_.d_fused : t == kVisual ? out_.d_visual : out_.d_text;
  }

  void gradient_pass() {
    // Output buffers accumulate dL/dx^ * tau (i.e. sums of g * x^) until finish.
    const auto zero = [&](float* g, int64_t n) {
      if (g) std::fill(g, g + n, 0.0f);
    };
    zero(out_.d_query, B_ * D_);
    zero(out_.d_fused, B_ * D_);
    zero(out_.d_visual, B_ * D_);
    zero(out_.d_text, B_ * D_);
    zero(out_.d_shuffled, B_ * K_ * D_);

    std::vector<float> lse_row[kTerms], lse_col(B_);
    for (int t = 0; t < kTerms; ++t) {
      if (!active_[t]) continue;
      lse_row[t].resize(B_);
      for (int64_t i = 0; i < B_; ++i) lse_row[t][i] = static_cast<float>(lse_value(row_lse_[t][i]));
    }
    for (int64_t j = 0; j < B_; ++j) lse_col[j] = static_cast<float>(lse_value(col_lse_[j]));

    dtau_row_block_.assign(blocks_, 0.0);
    const double inv_b = 1.0 / static_cast<double>(B_);
    for_each_tile([&](int64_t r, int64_t c, Workspace& ws) {
      const int64_t r0 = block_start(r), nr = block_len(r);
      const int64_t c0 = block_start(c), nc = block_len(c);
      for (int t = 0; t < kTerms; ++t) {
        if (!active_[t]) continue;
        logits_tile(ws, t, r, c);
        float* g = ws.tile[t].data();
        dtau_row_block_[r] += softmax_grad_tile(g, nr, nc, lse_row[t].data() + r0,
                                                t == kFused ? lse_col.data() + c0 : nullptr,
                                                r == c, static_cast<float>(weight_[t] * inv_b));
        if (out_.d_query)  // dQ^_r += G X^_c
          gemm_acc(out_.d_query + r0 * D_, D_, g, nc, 1, doc_[t].hat + c0 * D_, D_, nr, D_, nc);
        if (float* dx = doc_grad(t))  // dX^_c += G^T Q^_r
          gemm_acc(dx + c0 * D_, D_, g, 1, nc, query_.hat + r0 * D_, D_, nc, D_, nr);
      }
    });
  }

  // MS gradients, the 1/tau of dz/dc, the normalisation backward and dL/dtau.
  void finish_gradients() {
    const double inv_b = 1.0 / static_cast<double>(B_);
    std::vector<double> dtau_ms(use_ms_ ? blocks_ : 0, 0.0);
    if (use_ms_) {
      parallel_for(threads_, blocks_, [&](int64_t b, int) {
        for (int64_t i = block_start(b); i < block_start(b) + block_len(b); ++i) {
          const float* q = query_.hat + i * D_;
          const float* m = doc_[kFused].hat + i * D_;
          // g_pos = dL_ms/dz_ii, g_k = dL_ms/dzs_ik (units of dL/dz, like the tiles).
          const double g_pos = p_.gamma * inv_b * (std::exp(positive_[kFused][i] - ms_lse_[i]) - 1.0);
          double dtau = g_pos * positive_[kFused][i];
          float* dq = out_.d_query ? out_.d_query + i * D_ : nullptr;
          if (dq)
            for (int64_t d = 0; d < D_; ++d) dq[d] += static_cast<float>(g_pos * m[d]);
          if (out_.d_fused) {
            float* dm = out_.d_fused + i * D_;
            for (int64_t d = 0; d < D_; ++d) dm[d] += static_cast<float>(g_pos * q[d]);
          }
          for (int64_t k = 0; k < K_; ++k) {
            const double zs = ms_logits_[i * K_ + k];
            const double g = p_.gamma * inv_b * std::exp(zs - ms_lse_[i]);
            dtau += g * zs;
            const float* s = shuffled_.hat + (i * K_ + k) * D_;
            if (dq)
              for (int64_t d = 0; d < D_; ++d) dq[d] += static_cast<float>(g * s[d]);
            if (out_.d_shuffled) {
              float* ds = out_.d_shuffled + (i * K_ + k) * D_;
              for (int64_t d = 0; d < D_; ++d) ds[d] = static_cast<float>(g * q[d]);
            }
          }
          dtau_ms[b] += dtau;
        }
      });
    }

    // dL/dc = dL/dz / tau, then through the normalisation.
    normalize_rows_backward(out_.d_query, query_, B_, D_, inv_tau_, threads_);
    for (int t = 0; t < kTerms; ++t)
      if (active_[t]) normalize_rows_backward(doc_grad(t), doc_[t], B_, D_, inv_tau_, threads_);
    if (use_ms_) normalize_rows_backward(out_.d_shuffled, shuffled_, B_ * K_, D_, inv_tau_, threads_);

    // dL/dtau = -(1/tau) sum dL/dz * z, in block order.
    double dtau = 0;
    for (int64_t b = 0; b < blocks_; ++b) dtau += dtau_row_block_[b];
    for (double v : dtau_ms) dtau += v;
    out_.d_temperature = -dtau * inv_tau_;
  }

  LossOutputs& out_;
  const LossParams& p_;
  const int64_t B_, D_, K_;
  const int threads_;
  const int64_t bs_, blocks_;
  const double inv_tau_;
  bool active_[kTerms];
  double weight_[kTerms];
  bool use_ms_;

  NormalizedRows query_, doc_[kTerms], shuffled_;
  std::vector<LseState> row_lse_[kTerms], col_lse_;
  std::vector<float> positive_[kTerms];  // z_ii of each term
  std::vector<double> ms_logits_, ms_lse_;
  std::vector<double> dtau_row_block_;
  std::vector<Workspace> workspace_;
};

}  // namespace

void loss(LossOutputs& out, const LossParams& p) { LossRun(out, p).run(); }

}  // namespace mbvr::cpu
