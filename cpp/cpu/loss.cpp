// MBVR loss and gradients on the CPU (SPEC section 2), in O(B * (D + R)) memory plus an
// optional cache of all fused logits when they fit a budget (see cache_budget()).
//
// Notation: q, m, v, t are the raw query, fused, visual and text rows, x^ = x * inv_x
// their normalised forms (never materialised: see normalize.h), s the shuffled rows;
// z = c / tau are logits and g = dL/dz. The documents of a term are X in {M, V, T}.
//
// The queries are cut into strips of R rows. For one strip, a term's logits form a
// B x R "strip tile" stored documents x queries (similarity.h); it is processed in
// blocks of NB documents:
//
//   pass 1 (fused only)  per strip: z = logits(M, strip) block by block; every
//                        document's log-sum-exp (L_mq) merges the strip, every query's
//                        (L_qm) merges the blocks. Strips that fit the cache are kept.
//   MS term              per row: K dot products, log-sum-exp with the positive.
//   pass 2               per strip, term by term (fused, visual, text), each term
//                        through A-C-D before the next, so one strip buffer serves all:
//     A  per block       visual/text: z -> exp and per-query partials.
//     merge              visual/text: per query log-sum-exp over the blocks.
//     C  per block       g: fused from z (cached or recomputed; all its statistics are
//                        known), visual/text from exp; then dX^_block += g^T Q^_strip.
//     D  per column      dQ^_strip (+)= g X^ of this term (terms add in order).
//   finish               MS gradients, / tau, normalisation backward.
//
// Cost: 10 GEMM-equivalents of 2*B^2*D flops (1 + 3 + 3 + 3), 9 when the fused logits
// fit the cache (pass 2 reads them instead of recomputing); a forward-only call costs 3.
// A query's statistics for visual/text complete within its strip, so only the fused
// term (whose L_mq needs every query of a document) needs the separate first pass.
//
// The dense products (logits, dX, dQ) go through StripProducts (strip_products.h), at
// fp32 or, when asked for and accurate enough, bf16; everything else here (statistics,
// soft-maxes, gradients of the scalars) is the same code at either precision.
//
// Positives: their g = p - 1 is computed in double from the statistics (expm1), never as
// a float p minus 1, which cancels when a softmax is confident (p near 1).
//
// Gradient layout: the backward products consume g * inv_x[j] ("g'"): then
// dQ^ = sum_j g'_ij x_j / tau takes the raw documents, and dX accumulates
// sum_i g'_ij q^_i = inv_j * dL/dx^_j * tau, the "prescaled" form normalize.h expects.
//
// Determinism without atomics: every output element is produced by one work item at a
// time and sums its contributions in an order fixed by strip / block / row indices (and
// gemm.h's fixed summation order), never by which thread ran what. Block sizes depend
// on B and D only. So the thread count cannot change a bit of the result.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu_backend.h"
#include "gemm.h"
#include "large_buffer.h"
#include "normalize.h"
#include "similarity.h"
#include "softmax_tiles.h"
#include "strip_products.h"
#include "thread_pool.h"

namespace mbvr::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Queries per strip and documents per block. A block tile (NB x R floats) and its
// documents (NB x D) stay in L2 while a work item turns them over. Taller strips reread
// the documents and the document gradients less often (R = 512 was 5% faster than 256
// at B = 4096, D = 512), but the strip tiles take 3 B R floats: R follows D to keep
// that near the size of the inputs. NB = 132 = 11 x 12 fills the 12-row microkernel
// tiles exactly (256 left a 4-row tile per block, at a third of the rate: 2-3% overall),
// and gives each parallel loop of a strip 2 x B / 264 items, so that the last item's
// wait is short (pass 2 runs five such loops per strip: strip_pass).
constexpr int64_t kBlockRows = 132;
int64_t strip_rows(int64_t batch, int64_t dim) {
  return std::min<int64_t>(dim >= 256 ? 512 : dim >= 128 ? 256 : 128, batch);
}

// Strip tiles get a row stride of R + 16 floats: with exactly R = 256 (1 KiB) the
// dQ product, which walks a tile down its columns, hit a handful of cache sets only.
constexpr int64_t kTilePad = 16;

// Default budget for caching fused logits: 80 MiB holds every fused logit (B x (R + 16)
// floats) up to B = 4096; beyond, nothing is cached. The option logitCacheBytes
// (LossParams::logit_cache_bytes), else MBVR_LOGIT_CACHE_BYTES, overrides it (0: off).
constexpr int64_t kDefaultCacheBytes = int64_t{80} << 20;

int64_t cache_budget(int64_t requested) {
  if (requested >= 0) return requested;
  if (const char* env = std::getenv("MBVR_LOGIT_CACHE_BYTES")) {
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    if (end != env && v >= 0) return v;
  }
  return kDefaultCacheBytes;
}

enum Term { kFused = 0, kVisual = 1, kText = 2, kTerms = 3 };

class LossRun {
 public:
  LossRun(LossOutputs& out, const LossParams& p)
      : out_(out), p_(p), B_(p.batch), D_(p.dim), K_(p.k), threads_(resolve_threads(p.threads)),
        R_(strip_rows(p.batch, p.dim)), LD_(R_ + kTilePad), NB_(kBlockRows),
        strips_((p.batch + R_ - 1) / R_), blocks_((p.batch + NB_ - 1) / NB_),
        inv_tau_(1.0 / p.temperature), inv_b_(1.0 / static_cast<double>(p.batch)),
        precision_(products_precision(p, threads_)),
        products_(precision_ == Precision::Bf16, B_, D_, R_, threads_, p.grads) {
    const float* docs[kTerms] = {p.fused, p.visual, p.text};
    float* grads[kTerms] = {out.d_fused, out.d_visual, out.d_text};
    const double weight[kTerms] = {1.0, p.alpha, p.beta};
    for (int t = 0; t < kTerms; ++t) {
      x_[t] = docs[t];
      dx_[t] = p.grads ? grads[t] : nullptr;
      weight_[t] = weight[t];
      active_[t] = t == kFused || weight[t] > 0;
    }
    dq_ = p.grads ? out.d_query : nullptr;
    use_ms_ = p.gamma > 0;
  }

  void run() {
    normalize_inputs();
    allocate();
    statistics_pass();
    shuffled_term();
    strip_pass();
    compute_loss();
    if (p_.grads) finish_gradients();
    out_.backend_used = Backend::Cpu;
    out_.precision_used = precision_;
  }

 private:
  // ---- set-up --------------------------------------------------------------------

  void normalize_inputs() {
    normalize_rows_forward(q_scale_, p_.query, B_, D_, p_.normalize, threads_);
    for (int t = 0; t < kTerms; ++t) {
      if (!active_[t]) continue;
      normalize_rows_forward(x_scale_[t], x_[t], B_, D_, p_.normalize, threads_);
      factor_[t].resize(B_);  // inv_j / tau: the logits' per-document factor
      for (int64_t j = 0; j < B_; ++j) factor_[t][j] = static_cast<float>(x_scale_[t].inv[j] / p_.temperature);
      products_.set_documents(t, x_[t]);
    }
    if (use_ms_) normalize_rows_forward(s_scale_, p_.shuffled, B_ * K_, D_, p_.normalize, threads_);
  }

  void allocate() {
    const LseState empty{-std::numeric_limits<double>::infinity(), 0.0};
    for (int t = 0; t < kTerms; ++t) {
      if (!active_[t]) continue;
      q_stats_[t].assign(B_, empty);
      positive_[t].assign(B_, 0.0f);
      part_max_[t].resize(blocks_ * R_);
      part_sum_[t].resize(blocks_ * R_);
      if (t != kFused) {
        part_ez_[t].resize(blocks_ * R_);
        dtau_q_[t].assign(B_, 0.0);
        positive_g_[t].assign(B_, 0.0);
      }
    }
    d_stats_.assign(B_, empty);
    const int64_t strip_floats = B_ * LD_;
    // All or nothing: a cache of a few strips saves a few percent for its whole budget.
    cached_strips_ = p_.grads && strips_ * strip_floats * 4 <= cache_budget(p_.logit_cache_bytes) ? strips_ : 0;
    cache_.resize(cached_strips_ * strip_floats);
    // One strip buffer for whichever terms are not cached (they take turns: strip_pass).
    bool uncached = cached_strips_ < strips_;
    for (int t = kVisual; t < kTerms; ++t) uncached = uncached || active_[t];
    if (uncached) strip_.resize(strip_floats);
    dtau_fused_.assign(strips_ * blocks_, 0.0);
  }

  double margin(int64_t i) const {
    return p_.margin_per_row ? static_cast<double>(p_.margin_per_row[i]) : p_.margin;
  }

  int64_t strip_start(int64_t s) const { return s * R_; }
  int64_t strip_len(int64_t s) const { return std::min(R_, B_ - s * R_); }
  int64_t block_start(int64_t b) const { return b * NB_; }
  int64_t block_len(int64_t b) const { return std::min(NB_, B_ - b * NB_); }

  // The strip tile of term t for strip s (B x R, row stride LD_, row j = document j).
  float* strip_tile(int t, int64_t s) {
    if (t == kFused && s < cached_strips_) return cache_.data() + s * B_ * LD_;
    return strip_.data();
  }

  // The normalised queries of strip s, as the products want them.
  void load_strip_queries(int64_t s) {
    const int64_t r0 = strip_start(s);
    products_.load_queries(p_.query + r0 * D_, q_scale_.inv.data() + r0, strip_len(s));
  }

  // z (block b of the strip tile) = logits of term t: c / tau, the margin on the fused
  // positives, -inf where labels mask. Returns the block's tile pointer.
  float* logits_block(int t, int64_t s, int64_t b) {
    const int64_t r0 = strip_start(s), nq = strip_len(s);
    const int64_t c0 = block_start(b), nd = block_len(b);
    float* z = strip_tile(t, s) + c0 * LD_;
    products_.logits(z, LD_, t, c0, nd, factor_[t].data() + c0);
    // Positives: document j = query i, never masked; the margin lowers the fused ones.
    const int64_t d0 = std::max(c0, r0), d1 = std::min(c0 + nd, r0 + nq);
    float diagonal[kBlockRows];
    for (int64_t j = d0; j < d1; ++j) diagonal[j - d0] = z[(j - c0) * LD_ + (j - r0)];
    if (p_.labels) {  // duplicates of the positive are left out: -inf
      const int32_t* lq = p_.labels + r0;
      for (int64_t j = 0; j < nd; ++j) {
        const int32_t lj = p_.labels[c0 + j];
        float* zj = z + j * LD_;
        for (int64_t i = 0; i < nq; ++i) zj[i] = lq[i] == lj ? kNegInf : zj[i];
      }
    }
    // The positive is kept apart (positive_) and -inf in the tile, so every statistic
    // covers the other entries only (see lse_minus); gradients overwrite it later.
    for (int64_t j = d0; j < d1; ++j) {
      float zii = diagonal[j - d0];
      if (t == kFused) zii -= static_cast<float>(margin(j) * inv_tau_);
      z[(j - c0) * LD_ + (j - r0)] = kNegInf;
      positive_[t][j] = zii;
    }
    return z;
  }

  // ---- pass 1: fused statistics ----------------------------------------------------

  void statistics_pass() {
    for (int64_t s = 0; s < strips_; ++s) {
      load_strip_queries(s);
      const int64_t r0 = strip_start(s), nq = strip_len(s);
      parallel_for(threads_, blocks_, [&](int64_t b, int) {
        const float* z = logits_block(kFused, s, b);
        lse_partials(d_stats_.data() + block_start(b), part_max_[kFused].data() + b * R_,
                     part_sum_[kFused].data() + b * R_, z, block_len(b), nq, LD_);
      });
      merge_query_partials(kFused, r0, nq);
    }
  }

  // q_stats_[t] of the strip's queries from the per-block partials, in block order.
  void merge_query_partials(int t, int64_t r0, int64_t nq) {
    for (int64_t b = 0; b < blocks_; ++b)
      for (int64_t i = 0; i < nq; ++i)
        lse_merge(q_stats_[t][r0 + i], part_max_[t][b * R_ + i], part_sum_[t][b * R_ + i]);
  }


  // ---- the modality-shuffled term ------------------------------------------------

  // Per row: zs_ik = c(q_i, s_ik) / tau, lse_ms_i = log(e^{z_ii} + sum_k e^{zs_ik});
  // the positive's share goes into the fused gradient tile (ms_positive_), the rest is
  // applied in finish_gradients().
  void shuffled_term() {
    if (!use_ms_) return;
    ms_logits_.assign(B_ * K_, 0.0);
    ms_lse_.assign(B_, 0.0);
    ms_positive_.assign(B_, 0.0);
    ms_term_.assign(B_, 0.0);
    parallel_for(threads_, strips_, [&](int64_t s, int) {
      for (int64_t i = strip_start(s); i < strip_start(s) + strip_len(s); ++i) {
        const double zii = positive_[kFused][i];
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < K_; ++k) {
          const int64_t row = i * K_ + k;
          ms_logits_[row] = products_.pair_logit(p_.query + i * D_, q_scale_.inv[i], p_.shuffled + row * D_,
                                                 s_scale_.inv[row], inv_tau_);
          m = std::max(m, ms_logits_[row]);
        }
        LseState negatives{m, 0.0};  // the K negatives: the positive stays apart
        for (int64_t k = 0; k < K_; ++k) negatives.sum += std::exp(ms_logits_[i * K_ + k] - m);
        ms_term_[i] = lse_minus(negatives, zii);  // L_ms of row i
        ms_lse_[i] = zii + ms_term_[i];
        // dL_ms/dz_ii = gamma (p - 1) / B, in units of dL/dz like the tiles.
        ms_positive_[i] = p_.gamma * inv_b_ * std::expm1(-ms_term_[i]);
      }
    });
  }

  // ---- pass 2 --------------------------------------------------------------------

  // Pass 2, term by term within each strip: a term goes through A, C and D before the
  // next starts, so one strip buffer serves every term (8.6 MiB at B = 4096, R = 512).
  void strip_pass() {
    std::vector<int> terms;
    for (int t = 0; t < kTerms; ++t)
      if (active_[t] && (t != kFused || p_.grads)) terms.push_back(t);
    if (p_.grads) prepare_fused_gradients();
    for (int64_t s = 0; s < strips_; ++s) {
      if (terms.empty()) break;
      load_strip_queries(s);
      for (size_t n = 0; n < terms.size(); ++n) strip_term(terms[n], s, n == 0);
    }
  }

  // Term t of strip s. `first`: the strip's first term, which writes dQ (later ones add).
  void strip_term(int t, int64_t s, bool first) {
    const int64_t r0 = strip_start(s), nq = strip_len(s);
    if (t != kFused) {
      // A: logits, exp and per-block partials; then the per-query merge and, for the
      // gradients, the factors of phase C. (The fused term's statistics are all known.)
      parallel_for(threads_, blocks_, [&](int64_t b, int) {
        float* z = logits_block(t, s, b);
        exp_partials(z, part_max_[t].data() + b * R_, part_sum_[t].data() + b * R_,
                     part_ez_[t].data() + b * R_, block_len(b), nq, LD_, block_start(b) - r0);
      });
      merge_query_partials(t, r0, nq);
      if (!p_.grads) return;
      row_softmax_factors(t, r0, nq);
    }
    // C: the gradient coefficients g', then each document block's gradient.
    parallel_for(threads_, blocks_, [&](int64_t b, int) {
      if (t == kFused)
        fused_gradient_block(s, b);
      else
        row_softmax_gradient_block(t, s, b);
      if (dx_[t]) {  // dX_block (+)= g'^T Q^_strip: prescaled dL/dx^ * tau
        const int64_t c0 = block_start(b);
        products_.document_gradient(dx_[t] + c0 * D_, strip_tile(t, s) + c0 * LD_, LD_, block_len(b), s > 0);
      }
    });
    // D: dQ^_strip (+)= g'_t X_t (raw documents): over the terms, f then v then t.
    if (dq_) products_.query_gradient(dq_ + r0 * D_, t, strip_tile(t, s), LD_, !first);
  }

  void prepare_fused_gradients() {
    lse_q_.resize(B_);
    lse_d_.resize(B_);
    for (int64_t i = 0; i < B_; ++i) {
      lse_q_[i] = static_cast<float>(lse_full(q_stats_[kFused][i], positive_[kFused][i]));
      lse_d_[i] = static_cast<float>(lse_full(d_stats_[i], positive_[kFused][i]));
    }
  }

  // Fused block: g = (P_row + P_col - 2 [i == j]) / B, plus the MS term's share of the
  // positive; stored as g' = g * inv_j. Adds sum g * z to dtau_fused_.
  void fused_gradient_block(int64_t s, int64_t b) {
    const int64_t r0 = strip_start(s), nq = strip_len(s);
    const int64_t c0 = block_start(b), nd = block_len(b);
    float* z = s < cached_strips_ ? strip_tile(kFused, s) + c0 * LD_ : logits_block(kFused, s, b);
    const float* inv = x_scale_[kFused].inv.data() + c0;
    const float scale = static_cast<float>(inv_b_);
    double dot = fused_grad_tile(z, lse_q_.data() + r0, lse_d_.data() + c0, inv, scale, nd, nq, LD_,
                                 c0 - r0);
    // Positives in double: g = (p_row - 1 + p_col - 1) / B + the MS share.
    for (int64_t j = std::max(c0, r0); j < std::min(c0 + nd, r0 + nq); ++j) {
      const float zii = positive_[kFused][j];
      const double g = inv_b_ * (std::expm1(-lse_minus(q_stats_[kFused][j], zii)) +
                                 std::expm1(-lse_minus(d_stats_[j], zii))) +
                       (use_ms_ ? ms_positive_[j] : 0.0);
      z[(j - c0) * LD_ + (j - r0)] = static_cast<float>(g * inv[j - c0]);
      dot += g * zii;
    }
    dtau_fused_[s * blocks_ + b] = dot;
  }

  // Visual/text: per query i and block b, factor = weight / B * exp(part_max - lse) turns
  // the block's exp values into probabilities / B; dL/dtau's row share follows from the
  // partial sums of e * z.
  void row_softmax_factors(int t, int64_t r0, int64_t nq) {
    const double w = weight_[t] * inv_b_;
    for (int64_t i = 0; i < nq; ++i) {
      // The positive in double (g = w (p - 1)); the blocks' sums leave it out.
      const float zii = positive_[t][r0 + i];
      const double lse = lse_full(q_stats_[t][r0 + i], zii);
      const double pm1 = std::expm1(-lse_minus(q_stats_[t][r0 + i], zii));
      positive_g_[t][r0 + i] = w * pm1;
      double dot = w * pm1 * zii;
      for (int64_t b = 0; b < blocks_; ++b) {
        float& f = part_max_[t][b * R_ + i];  // becomes the factor, in place
        const double factor = f == kNegInf ? 0.0 : w * std::exp(static_cast<double>(f) - lse);
        dot += factor * part_ez_[t][b * R_ + i];
        f = static_cast<float>(factor);
      }
      dtau_q_[t][r0 + i] = dot;
    }
  }

  void row_softmax_gradient_block(int t, int64_t s, int64_t b) {
    const int64_t r0 = strip_start(s), nq = strip_len(s);
    const int64_t c0 = block_start(b), nd = block_len(b);
    float* z = strip_tile(t, s) + c0 * LD_;
    const float* inv = x_scale_[t].inv.data() + c0;
    scale_exp_tile(z, part_max_[t].data() + b * R_, inv, nd, nq, LD_);
    for (int64_t j = std::max(c0, r0); j < std::min(c0 + nd, r0 + nq); ++j)
      z[(j - c0) * LD_ + (j - r0)] = static_cast<float>(positive_g_[t][j] * inv[j - c0]);
  }

  // ---- loss ----------------------------------------------------------------------

  void compute_loss() {
    // Per-row values summed in row order: the same bits for any thread count.
    double sum[kTerms] = {0, 0, 0}, sum_mq = 0, sum_ms = 0;
    for (int64_t i = 0; i < B_; ++i) {
      for (int t = 0; t < kTerms; ++t)
        if (active_[t]) sum[t] += lse_minus(q_stats_[t][i], positive_[t][i]);
      sum_mq += lse_minus(d_stats_[i], positive_[kFused][i]);
      if (use_ms_) sum_ms += ms_term_[i];
    }
    LossTerms& terms = out_.terms;
    terms.qm = sum[kFused] * inv_b_;
    terms.mq = sum_mq * inv_b_;
    terms.v = active_[kVisual] ? sum[kVisual] * inv_b_ : 0.0;
    terms.t = active_[kText] ? sum[kText] * inv_b_ : 0.0;
    terms.ms = use_ms_ ? sum_ms * inv_b_ : 0.0;
    out_.loss = terms.qm + terms.mq + p_.alpha * terms.v + p_.beta * terms.t + p_.gamma * terms.ms;
  }

  // ---- finish --------------------------------------------------------------------

  // MS gradients (all but the positive's share), 1/tau, normalisation backward, dL/dtau.
  void finish_gradients() {
    float* grads[kTerms] = {out_.d_fused, out_.d_visual, out_.d_text};
    for (int t = 0; t < kTerms; ++t)  // an input given with weight 0 gets a zero gradient
      if (!active_[t] && grads[t]) std::fill(grads[t], grads[t] + B_ * D_, 0.0f);
    if (out_.d_shuffled && !use_ms_) std::fill(out_.d_shuffled, out_.d_shuffled + B_ * K_ * D_, 0.0f);

    std::vector<double> dtau_ms(use_ms_ ? strips_ : 0, 0.0);
    if (use_ms_) {
      parallel_for(threads_, strips_, [&](int64_t s, int) {
        for (int64_t i = strip_start(s); i < strip_start(s) + strip_len(s); ++i) {
          const float* q = p_.query + i * D_;
          const float qi = q_scale_.inv[i];
          double dtau = 0;
          for (int64_t k = 0; k < K_; ++k) {
            const int64_t row = i * K_ + k;
            const double zs = ms_logits_[row];
            const double g = p_.gamma * inv_b_ * std::exp(zs - ms_lse_[i]);  // dL/dzs_ik
            dtau += g * zs;
            const float* sk = p_.shuffled + row * D_;
            const double gs = g * s_scale_.inv[row];  // dq^ += g s^
            if (dq_)
              for (int64_t d = 0; d < D_; ++d) dq_[i * D_ + d] += static_cast<float>(gs * sk[d]);
            if (out_.d_shuffled) {  // ds^ = g q^
              float* ds = out_.d_shuffled + row * D_;
              const double gq = g * qi;
              for (int64_t d = 0; d < D_; ++d) ds[d] = static_cast<float>(gq * q[d]);
            }
          }
          dtau_ms[s] += dtau;
        }
      });
    }

    // dL/dc = dL/dz / tau, then through the normalisation.
    normalize_rows_backward(dq_, p_.query, q_scale_, B_, D_, inv_tau_, false, threads_);
    for (int t = 0; t < kTerms; ++t)
      if (active_[t]) normalize_rows_backward(dx_[t], x_[t], x_scale_[t], B_, D_, inv_tau_, true, threads_);
    if (use_ms_)
      normalize_rows_backward(out_.d_shuffled, p_.shuffled, s_scale_, B_ * K_, D_, inv_tau_, false, threads_);

    // dL/dtau = -(1/tau) sum dL/dz * z, in a fixed order.
    double dtau = 0;
    for (double v : dtau_fused_) dtau += v;
    for (int t = kVisual; t < kTerms; ++t)
      for (double v : dtau_q_[t]) dtau += v;
    for (double v : dtau_ms) dtau += v;
    out_.d_temperature = -dtau * inv_tau_;
  }

  LossOutputs& out_;
  const LossParams& p_;
  const int64_t B_, D_, K_;
  const int threads_;
  const int64_t R_, LD_, NB_, strips_, blocks_;  // LD_: row stride of strip tiles
  const double inv_tau_, inv_b_;

  const float* x_[kTerms];
  float* dx_[kTerms];
  float* dq_;
  double weight_[kTerms];
  bool active_[kTerms];
  bool use_ms_;

  RowScales q_scale_, x_scale_[kTerms], s_scale_;
  std::vector<float> factor_[kTerms];   // inv_x / tau per document
  const Precision precision_;           // of the products (products_precision)
  StripProducts products_;              // the dense products
  LargeArray<float> strip_;             // the strip tile (B x R) of a term not held by the cache
  LargeArray<float> cache_;             // fused strip tiles of the first cached_strips_
  int64_t cached_strips_ = 0;

  std::vector<LseState> q_stats_[kTerms], d_stats_;  // per query; per fused document
  std::vector<float> positive_[kTerms];              // z_ii of each term
  std::vector<double> positive_g_[kTerms];           // visual/text: dL/dz_ii
  std::vector<float> part_max_[kTerms];                          // blocks x R
  std::vector<double> part_sum_[kTerms], part_ez_[kTerms];       // blocks x R
  std::vector<float> lse_q_, lse_d_;                 // fused log-sum-exps, as floats
  std::vector<double> ms_logits_, ms_lse_;
  std::vector<double> ms_positive_, ms_term_;
  std::vector<double> dtau_fused_, dtau_q_[kTerms];
};

}  // namespace

void loss(LossOutputs& out, const LossParams& p) { LossRun(out, p).run(); }

}  // namespace mbvr::cpu
