// MBVR loss and gradients on the CPU (docs/math.md §2-§3), in O(B * (D + R)) memory plus
// an optional cache of the fused logits when they fit a budget (see cache_budget()).
//
// Notation: q, m, v, t are the query, fused, visual and text rows, x^ their normalised
// forms (never materialised, but for extreme norms: normalize.h), s the shuffled rows;
// z = c / tau are logits and g = dL/dz. The documents of a term are X in {M, V, T}.
//
// One call holds query rows [row0, row0 + rows) of a batch of B and all B documents: the
// whole batch in one process (row0 = 0, rows = B), or one rank's shard of a data-parallel
// batch (docs/math.md §6). The work runs in three phases, around the merge of L_mq's
// column statistics and the sum of the document gradients over shards (identities in one
// process: loss() at the end of this file):
//
//   statistics  pass 1, fused only, per strip of R queries: z = logits(M, strip) block by
//               block of NB documents; every document's column statistics (L_mq, over
//               this shard's queries) merge the strip, every query's (L_qm) the blocks.
//               Strips that fit the cache are kept.
//   gradients   the MS term (ms_term.h); then pass 2 per strip, term by term (fused,
//               visual, text), each term through A-C-D before the next, so one strip
//               buffer serves all:
//     A  per block      visual/text: z -> exp and per-query partials.
//     merge             visual/text: per query log-sum-exp over the blocks.
//     C  per block      g: fused from z (cached or recomputed; all its statistics are
//                       known), visual/text from exp; then dX^_block += g^T Q^_strip.
//     D  per column     dQ^_strip (+)= g X^ of this term (terms add in order).
//               then the MS negatives' gradients, / tau and the normalisation backward
//               of the queries and shuffled rows; the per-term sums.
//   finish_documents    / tau and the normalisation backward of the document rows this
//               shard owns, once their gradients are summed over shards.
//
// Cost: 10 GEMM-equivalents of 2 * rows * B * D flops (1 + 3 + 3 + 3), 9 when the fused
// logits fit the cache (pass 2 reads them instead of recomputing); a forward-only call
// costs 3. A query's statistics for visual/text complete within its strip, so only the
// fused term (whose L_mq needs every query of a document) needs the separate first pass.
//
// The dense products (logits, dX, dQ) go through StripProducts (strip_products.h), at
// fp32 or, when asked for and accurate enough, bf16; everything else here (statistics,
// soft-maxes, gradients of the scalars) is the same code at either precision, and its
// math is loss_math.h's, shared with the CUDA backend.
//
// Positives (docs/math.md §3.1): every statistic leaves them out; their g = p - 1 is
// computed in double from the statistics (expm1), never as a float p minus 1, which
// cancels when a soft-max is confident (p near 1).
//
// Gradient layout: the backward products consume g * inv_x[j] ("g'"): then
// dQ^ = sum_j g'_ij x_j / tau takes the document operands, and dX accumulates
// sum_i g'_ij q^_i = inv_j * dL/dx^_j * tau, the form normalize.h calls "against the
// operand".
//
// Determinism without atomics: every output element is produced by one work item at a
// time and sums its contributions in an order fixed by strip / block / row indices (and
// gemm.h's fixed summation order), never by which thread ran what. Block sizes depend
// on B, rows and D only. So the thread count cannot change a bit of the result.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "../loss_math.h"
#include "cpu_backend.h"
#include "gemm.h"
#include "large_buffer.h"
#include "ms_term.h"
#include "normalize.h"
#include "similarity.h"
#include "softmax_tiles.h"
#include "strip_products.h"
#include "thread_pool.h"

namespace mbvr::cpu {
namespace {

using math::LseState;
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
int64_t strip_rows(int64_t rows, int64_t dim) {
  return std::max<int64_t>(1, std::min<int64_t>(dim >= 256 ? 512 : dim >= 128 ? 256 : 128, rows));
}

// Strip tiles get a row stride of R + 16 floats: with exactly R = 256 (1 KiB) the
// dQ product, which walks a tile down its columns, hit a handful of cache sets only.
constexpr int64_t kTilePad = 16;

// Default budget for caching fused logits: 80 MiB holds every fused logit (B x (R + 16)
// floats per strip) up to B = 4096; beyond, nothing is cached. The option
// logitCacheBytes (LossParams::logit_cache_bytes), else MBVR_LOGIT_CACHE_BYTES,
// overrides it (0: off).
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

}  // namespace

class LossRun {
 public:
  explicit LossRun(const LossParams& p)
      : p_(p), B_(p.batch), NQ_(p.query_rows()), R0_(p.row0), D_(p.dim), K_(p.k),
        threads_(resolve_threads(p.threads)), R_(strip_rows(NQ_, p.dim)), LD_(R_ + kTilePad), NB_(kBlockRows),
        strips_(NQ_ > 0 ? (NQ_ + R_ - 1) / R_ : 0), blocks_((p.batch + NB_ - 1) / NB_),
        inv_tau_(1.0 / p.temperature), inv_b_(1.0 / static_cast<double>(p.batch)),
        precision_(products_precision(p, threads_)),
        products_(precision_ == Precision::Bf16, B_, D_, R_, threads_, p.grads) {
    const float* docs[kTerms] = {p.fused, p.visual, p.text};
    const double weight[kTerms] = {1.0, p.alpha, p.beta};
    for (int t = 0; t < kTerms; ++t) {
      x_[t] = docs[t];
      weight_[t] = weight[t];
      active_[t] = t == kFused || weight[t] > 0;
    }
    use_ms_ = p.gamma > 0 && p.shuffled;
  }

  Precision precision() const { return precision_; }

  // ---- phase 1: fused statistics ---------------------------------------------------

  void statistics(ColumnStats& partial) {
    normalize_inputs();
    allocate();
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
    partial.max.resize(B_);
    partial.sum.resize(B_);
    for (int64_t j = 0; j < B_; ++j) {
      partial.max[j] = d_stats_[j].max;
      partial.sum[j] = d_stats_[j].sum;
    }
    partial.positive = positive_[kFused];
  }

  // ---- phase 2: the MS term, pass 2, the per-term sums -----------------------------

  void gradients(LossOutputs& out, LossSums& sums, const ColumnStats& merged) {
    for (int64_t j = 0; j < B_; ++j) d_stats_[j] = LseState{merged.max[j], merged.sum[j]};
    col_positive_ = merged.positive;
    float* grads[kTerms] = {out.d_fused, out.d_visual, out.d_text};
    for (int t = 0; t < kTerms; ++t) dx_[t] = p_.grads && active_[t] ? grads[t] : nullptr;
    dq_ = p_.grads ? out.d_query : nullptr;

    ms_forward_rows();
    strip_pass();
    double gz = 0;
    for (double v : gz_fused_) gz += v;
    for (int t = kVisual; t < kTerms; ++t)
      for (double v : gz_rows_[t]) gz += v;
    if (p_.grads) {
      if (use_ms_) gz += ms_backward(dq_, out.d_shuffled, ms_, q_scale_, s_scale_, D_, p_.gamma * inv_b_, R_, threads_);
      // dL/dc = dL/dz / tau, then through the normalisation.
      normalize_rows_backward(dq_, p_.query, q_scale_, NQ_, D_, inv_tau_, false, threads_);
      if (use_ms_)
        normalize_rows_backward(out.d_shuffled, p_.shuffled, s_scale_, NQ_ * K_, D_, inv_tau_, false, threads_);
      // An input given with weight 0 gets a zero gradient.
      for (int t = 0; t < kTerms; ++t)
        if (!active_[t] && grads[t]) std::fill(grads[t], grads[t] + B_ * D_, 0.0f);
      if (out.d_shuffled && !use_ms_) std::fill(out.d_shuffled, out.d_shuffled + NQ_ * K_ * D_, 0.0f);
    }
    row_sums(sums);
    sums.gz = gz;
    out.backend_used = Backend::Cpu;
    out.precision_used = precision_;
  }

  // ---- phase 3 -----------------------------------------------------------------------

  // dx_[t] rows of this shard (rows x D), summed over shards: / tau, normalisation backward.
  void finish_documents(float* const owned[kTerms]) {
    for (int t = 0; t < kTerms; ++t) {
      if (!owned[t] || !active_[t]) continue;
      RowScales rows;  // the owned rows' view of the document scales
      const RowScales& all = x_scale_[t];
      rows.rows = all.rows + R0_ * D_;
      rows.copied = all.copied;
      rows.inv.assign(all.inv.begin() + R0_, all.inv.begin() + R0_ + NQ_);
      if (all.normalized()) rows.norm.assign(all.norm.begin() + R0_, all.norm.begin() + R0_ + NQ_);
      normalize_rows_backward(owned[t], x_[t] + R0_ * D_, rows, NQ_, D_, inv_tau_, true, threads_);
    }
  }

 private:
  // ---- set-up --------------------------------------------------------------------

  void normalize_inputs() {
    normalize_rows_forward(q_scale_, p_.query, NQ_, D_, p_.normalize, threads_);
    for (int t = 0; t < kTerms; ++t) {
      if (!active_[t]) continue;
      normalize_rows_forward(x_scale_[t], x_[t], B_, D_, p_.normalize, threads_);
      factor_[t].resize(B_);  // the logits' per-document factor: inv_j / tau
      for (int64_t j = 0; j < B_; ++j) factor_[t][j] = static_cast<float>(x_scale_[t].inv[j] * inv_tau_);
      products_.set_documents(t, x_scale_[t].rows);
    }
    if (use_ms_) normalize_rows_forward(s_scale_, p_.shuffled, NQ_ * K_, D_, p_.normalize, threads_);
  }

  void allocate() {
    for (int t = 0; t < kTerms; ++t) {
      if (!active_[t]) continue;
      q_stats_[t].assign(NQ_, math::lse_empty());
      positive_[t].assign(NQ_, 0.0f);
      part_max_[t].resize(blocks_ * R_);
      part_sum_[t].resize(blocks_ * R_);
      if (t != kFused) {
        part_ez_[t].resize(blocks_ * R_);
        gz_rows_[t].assign(NQ_, 0.0);
        positive_g_[t].assign(NQ_, 0.0);
      }
    }
    d_stats_.assign(B_, math::lse_empty());
    const int64_t strip_floats = B_ * LD_;
    // All or nothing: a cache of a few strips saves a few percent for its whole budget.
    const double cache_bytes = static_cast<double>(strips_) * static_cast<double>(strip_floats) * 4;
    cached_strips_ = p_.grads && cache_bytes <= static_cast<double>(cache_budget(p_.logit_cache_bytes)) ? strips_ : 0;
    cache_.resize(cached_strips_ * strip_floats);
    // One strip buffer for whichever terms are not cached (they take turns: strip_pass).
    bool uncached = cached_strips_ < strips_;
    for (int t = kVisual; t < kTerms; ++t) uncached = uncached || active_[t];
    if (uncached) strip_.resize(strip_floats);
    gz_fused_.assign(strips_ * blocks_, 0.0);
  }

  double margin(int64_t i) const {  // of local query row i
    return p_.margin_per_row ? static_cast<double>(p_.margin_per_row[i]) : p_.margin;
  }

  int64_t strip_start(int64_t s) const { return s * R_; }
  int64_t strip_len(int64_t s) const { return std::min(R_, NQ_ - s * R_); }
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
    products_.load_queries(q_scale_.rows + r0 * D_, q_scale_.inv.data() + r0, strip_len(s));
  }

  // The documents [d0, d1) of block b whose positive (query R0_ + i) is in strip s.
  void diagonal_range(int64_t s, int64_t b, int64_t& d0, int64_t& d1) const {
    const int64_t g0 = R0_ + strip_start(s), c0 = block_start(b);
    d0 = std::max(c0, g0);
    d1 = std::min(c0 + block_len(b), g0 + strip_len(s));
  }
  // The column of document j's positive within strip s's tile.
  int64_t diagonal_column(int64_t s, int64_t j) const { return j - R0_ - strip_start(s); }

  // z (block b of the strip tile) = logits of term t: c / tau, the margin on the fused
  // positives, -inf where labels mask; the positives kept apart (positive_) and -inf in
  // the tile, so every statistic covers the other entries only (docs/math.md §3.1).
  // Returns the block's tile pointer.
  float* logits_block(int t, int64_t s, int64_t b) {
    const int64_t r0 = strip_start(s), nq = strip_len(s);
    const int64_t c0 = block_start(b), nd = block_len(b);
    float* z = strip_tile(t, s) + c0 * LD_;
    products_.logits(z, LD_, t, c0, nd, factor_[t].data() + c0);
    int64_t d0, d1;
    diagonal_range(s, b, d0, d1);
    float diagonal[kBlockRows];
    for (int64_t j = d0; j < d1; ++j) diagonal[j - d0] = z[(j - c0) * LD_ + diagonal_column(s, j)];
    if (p_.labels) {  // duplicates of the positive are left out: -inf
      const int32_t* lq = p_.labels + R0_ + r0;
      for (int64_t j = 0; j < nd; ++j) {
        const int32_t lj = p_.labels[c0 + j];
        float* zj = z + j * LD_;
        for (int64_t i = 0; i < nq; ++i) zj[i] = lq[i] == lj ? kNegInf : zj[i];
      }
    }
    for (int64_t j = d0; j < d1; ++j) {
      const int64_t i = j - R0_;  // the local query row
      const float c_over_tau = diagonal[j - d0];
      const double margin_over_tau = t == kFused ? margin(i) * inv_tau_ : 0.0;
      positive_[t][i] = static_cast<float>(math::positive_logit<double>(c_over_tau, margin_over_tau, 1.0));
      z[(j - c0) * LD_ + diagonal_column(s, j)] = kNegInf;
    }
    return z;
  }

  // q_stats_[t] of the strip's queries from the per-block partials, in block order.
  void merge_query_partials(int t, int64_t r0, int64_t nq) {
    for (int64_t b = 0; b < blocks_; ++b)
      for (int64_t i = 0; i < nq; ++i)
        math::lse_merge(q_stats_[t][r0 + i], part_max_[t][b * R_ + i], part_sum_[t][b * R_ + i]);
  }

  // ---- the modality-shuffled term ------------------------------------------------

  void ms_forward_rows() {
    if (!use_ms_) return;
    const MsLogit logit = [&](const float* q, float q_inv, const float* s, float s_inv) {
      return products_.ms_logit(q, q_inv, s, s_inv, inv_tau_);
    };
    ms_forward(ms_, q_scale_, s_scale_, positive_[kFused].data(), NQ_, K_, D_, R_, logit, threads_);
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
        exp_partials(z, part_max_[t].data() + b * R_, part_sum_[t].data() + b * R_, part_ez_[t].data() + b * R_,
                     block_len(b), nq, LD_);
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
      if (dx_[t]) {  // dX_block (+)= g'^T Q^_strip: dL/dx^ * tau against the operand
        const int64_t c0 = block_start(b);
        products_.document_gradient(dx_[t] + c0 * D_, strip_tile(t, s) + c0 * LD_, LD_, block_len(b), s > 0);
      }
    });
    // D: dQ^_strip (+)= g'_t X_t (document operands): over the terms, f then v then t.
    if (dq_) products_.query_gradient(dq_ + r0 * D_, t, strip_tile(t, s), LD_, !first);
  }

  // The full log-sum-exps of the fused soft-maxes, per local query (rows) and per
  // document (columns, from the merged statistics), for the tiles' probabilities; and
  // the positives' gradients, in double (docs/math.md §3.2, §3.4).
  void prepare_fused_gradients() {
    lse_q_.resize(NQ_);
    lse_d_.resize(B_);
    positive_g_[kFused].assign(NQ_, 0.0);
    for (int64_t i = 0; i < NQ_; ++i) {
      const double z = positive_[kFused][i];
      lse_q_[i] = static_cast<float>(math::lse_full(q_stats_[kFused][i], z));
      const double ms_share = use_ms_ ? math::ms_positive_grad(ms_.row[i], p_.gamma * inv_b_) : 0.0;
      positive_g_[kFused][i] = math::fused_positive_grad(q_stats_[kFused][i], d_stats_[R0_ + i], z, inv_b_, ms_share);
    }
    for (int64_t j = 0; j < B_; ++j) lse_d_[j] = static_cast<float>(math::lse_full(d_stats_[j], col_positive_[j]));
  }

  // Fused block: g = (P_row + P_col) / B off the diagonal (fused_grad_tile), the
  // positives from prepare_fused_gradients; stored as g' = g * inv_j. Sets the block's
  // share of sum g * z.
  void fused_gradient_block(int64_t s, int64_t b) {
    const int64_t r0 = strip_start(s), nq = strip_len(s);
    const int64_t c0 = block_start(b), nd = block_len(b);
    float* z = s < cached_strips_ ? strip_tile(kFused, s) + c0 * LD_ : logits_block(kFused, s, b);
    const float* inv = x_scale_[kFused].inv.data() + c0;
    const float scale = static_cast<float>(inv_b_);
    double gz = fused_grad_tile(z, lse_q_.data() + r0, lse_d_.data() + c0, inv, scale, nd, nq, LD_);
    int64_t d0, d1;
    diagonal_range(s, b, d0, d1);
    for (int64_t j = d0; j < d1; ++j) {
      const int64_t i = j - R0_;
      const double g = positive_g_[kFused][i];
      z[(j - c0) * LD_ + diagonal_column(s, j)] = static_cast<float>(g * inv[j - c0]);
      gz += math::dtau_term<double>(g, positive_[kFused][i]);
    }
    gz_fused_[s * blocks_ + b] = gz;
  }

  // Visual/text: per query i and block b, factor = weight / B * exp(part_max - lse) turns
  // the block's exp values into probabilities / B; the row's share of sum g * z follows
  // from the partial sums of e * z.
  void row_softmax_factors(int t, int64_t r0, int64_t nq) {
    const double w = weight_[t] * inv_b_;
    for (int64_t i = 0; i < nq; ++i) {
      const LseState& others = q_stats_[t][r0 + i];
      const float z = positive_[t][r0 + i];
      const double lse = math::lse_full(others, z);
      const double g = w * math::positive_grad(others, z);
      positive_g_[t][r0 + i] = g;
      double gz = math::dtau_term<double>(g, z);
      for (int64_t b = 0; b < blocks_; ++b) {
        float& f = part_max_[t][b * R_ + i];  // becomes the factor, in place
        const double factor = f == kNegInf ? 0.0 : math::softmax_grad<double>(f, lse, w, [](double x) { return std::exp(x); });
        gz += factor * part_ez_[t][b * R_ + i];
        f = static_cast<float>(factor);
      }
      gz_rows_[t][r0 + i] = gz;
    }
  }

  void row_softmax_gradient_block(int t, int64_t s, int64_t b) {
    const int64_t c0 = block_start(b), nd = block_len(b), nq = strip_len(s);
    float* z = strip_tile(t, s) + c0 * LD_;
    const float* inv = x_scale_[t].inv.data() + c0;
    scale_exp_tile(z, part_max_[t].data() + b * R_, inv, nd, nq, LD_);
    int64_t d0, d1;
    diagonal_range(s, b, d0, d1);
    for (int64_t j = d0; j < d1; ++j)
      z[(j - c0) * LD_ + diagonal_column(s, j)] = static_cast<float>(positive_g_[t][j - R0_] * inv[j - c0]);
  }

  // ---- scalars -------------------------------------------------------------------

  // Per-row values summed in row order: the same bits for any thread count.
  void row_sums(LossSums& sums) const {
    double sum[kTerms] = {0, 0, 0}, sum_mq = 0, sum_ms = 0;
    for (int64_t i = 0; i < NQ_; ++i) {
      for (int t = 0; t < kTerms; ++t)
        if (active_[t]) sum[t] += math::lse_minus(q_stats_[t][i], positive_[t][i]);
      sum_mq += math::lse_minus(d_stats_[R0_ + i], positive_[kFused][i]);  // this shard's documents
      if (use_ms_) sum_ms += ms_.row[i].loss;
    }
    sums.qm = sum[kFused];
    sums.mq = sum_mq;
    sums.v = active_[kVisual] ? sum[kVisual] : 0.0;
    sums.t = active_[kText] ? sum[kText] : 0.0;
    sums.ms = use_ms_ ? sum_ms : 0.0;
  }

  const LossParams& p_;
  const int64_t B_, NQ_, R0_, D_, K_;
  const int threads_;
  const int64_t R_, LD_, NB_, strips_, blocks_;  // LD_: row stride of strip tiles
  const double inv_tau_, inv_b_;

  const float* x_[kTerms];
  float* dx_[kTerms] = {nullptr, nullptr, nullptr};
  float* dq_ = nullptr;
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

  std::vector<LseState> q_stats_[kTerms];  // per local query: the others' statistics
  std::vector<LseState> d_stats_;          // per document: L_mq's (partial, then merged)
  std::vector<float> positive_[kTerms];    // z_ii of each term, per local query
  std::vector<float> col_positive_;        // z_jj of every document (merged)
  std::vector<double> positive_g_[kTerms]; // dL/dz_ii, per local query
  std::vector<float> part_max_[kTerms];                          // blocks x R
  std::vector<double> part_sum_[kTerms], part_ez_[kTerms];       // blocks x R
  std::vector<float> lse_q_, lse_d_;       // fused log-sum-exps, as floats
  MsTerm ms_;
  std::vector<double> gz_fused_, gz_rows_[kTerms];  // shares of sum g * z
};

}  // namespace mbvr::cpu

// ---------------------------------------------------------------------------------------
// The core's data-parallel entry points (mbvr.h), and the single-process loss built on
// them: one decomposition for both.

namespace mbvr {

struct LossShard::Impl {
  explicit Impl(const LossParams& p) : run(p) {}
  cpu::LossRun run;
};

LossShard::LossShard(const LossParams& p) {
  check_loss_sizes(p);
  impl_ = std::make_unique<Impl>(p);
}
LossShard::~LossShard() = default;

void LossShard::statistics(ColumnStats& partial) { impl_->run.statistics(partial); }
void LossShard::gradients(LossOutputs& out, LossSums& sums, const ColumnStats& merged) {
  impl_->run.gradients(out, sums, merged);
}
void LossShard::finish_documents(float* d_fused, float* d_visual, float* d_text) {
  float* const owned[3] = {d_fused, d_visual, d_text};
  impl_->run.finish_documents(owned);
}

void finish_scalars(LossOutputs& out, const LossSums& total, const LossParams& p) {
  const double inv_b = 1.0 / static_cast<double>(p.batch);
  LossTerms& terms = out.terms;
  terms.qm = total.qm * inv_b;
  terms.mq = total.mq * inv_b;
  terms.v = total.v * inv_b;
  terms.t = total.t * inv_b;
  terms.ms = total.ms * inv_b;
  out.loss = terms.qm + terms.mq + p.alpha * terms.v + p.beta * terms.t + p.gamma * terms.ms;
  out.d_temperature = p.grads ? math::dtau_from_sum(total.gz, 1.0 / p.temperature) : 0.0;
}

namespace cpu {

// One process holds every row: the partial column statistics are the merged ones, and
// the document gradients need no sum over shards.
void loss(LossOutputs& out, const LossParams& whole) {
  LossParams p = whole;
  p.row0 = 0;
  p.rows = p.batch;
  LossShard shard(p);
  ColumnStats columns;
  shard.statistics(columns);
  LossSums sums;
  shard.gradients(out, sums, columns);
  if (p.grads) shard.finish_documents(out.d_fused, out.d_visual, out.d_text);
  finish_scalars(out, sums, p);
}

}  // namespace cpu
}  // namespace mbvr
