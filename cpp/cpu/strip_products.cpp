#include "strip_products.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "gemm.h"
#include "similarity.h"
#include "thread_pool.h"

namespace mbvr::cpu {
namespace {

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Splits [0, n) into about one piece per thread, in multiples of `unit`. Any split gives
// the same bits (gemm.h, gemm_bf16.h): this only balances the work.
int64_t piece(int64_t n, int threads, int64_t unit) {
  return std::max(unit, round_up((n + threads - 1) / threads, unit));
}

}  // namespace

// Row stride of the transposed bf16 documents: at least B rounded up to even (an odd B's
// pad column, written by the last conversion block, stays inside its row), and an odd
// multiple of 64 bytes, so that the 12 rows a microkernel tile reads fall in different
// L1 sets (a multiple of 4 KiB put them all in one: 6-8% slower).
int64_t StripProducts::transposed_stride() const { return round_up(B_, 64) + 32; }

void row_shape(double& max_norm, double& max_fourth, const float* x, int64_t rows, int64_t dim, int threads) {
  // Each row in double; a max does not depend on the order, so neither on the thread count.
  constexpr int64_t kRows = 256;
  const int64_t items = (rows + kRows - 1) / kRows;
  std::vector<double> norm(items, 0.0), fourth(items, 0.0);
  parallel_for(threads, items, [&](int64_t item, int) {
    for (int64_t i = item * kRows; i < std::min(rows, (item + 1) * kRows); ++i) {
      double s2 = 0, s4 = 0;
      for (int64_t d = 0; d < dim; ++d) {
        const double v = static_cast<double>(x[i * dim + d]) * x[i * dim + d];
        s2 += v;
        s4 += v * v;
      }
      if (!(s2 > 0)) continue;  // a zero row has no logits to get wrong
      norm[item] = std::max(norm[item], std::sqrt(s2));
      fourth[item] = std::max(fourth[item], s4 / (s2 * s2));
    }
  });
  max_norm = 0;
  max_fourth = 0;
  for (int64_t item = 0; item < items; ++item) {
    max_norm = std::max(max_norm, norm[item]);
    max_fourth = std::max(max_fourth, fourth[item]);
  }
}

Precision products_precision(const LossParams& p, int threads) {
  if (p.precision != Precision::Bf16) return Precision::Fp32;
  const char* force = std::getenv("MBVR_BF16_FALLBACK");
  if (force && std::strcmp(force, "0") == 0) return Precision::Bf16;
  if (force && std::strcmp(force, "1") == 0) return Precision::Fp32;
  // "rule": the accuracy rule below even without the native kernel (emulated bf16), so
  // that a machine without AVX512-BF16 can test what one with it runs.
  if (!bf16_kernel_native() && !(force && std::strcmp(force, "rule") == 0)) return Precision::Fp32;
  if (p.batch < kBf16MinBatch) return Precision::Fp32;  // too few entries to average errors
  RowShapes shapes;
  if (p.shapes) {
    shapes = *p.shapes;
  } else {
    row_shape(shapes.q_norm, shapes.q_fourth, p.query, p.query_rows(), p.dim, threads);
    row_shape(shapes.x_norm, shapes.x_fourth, p.fused, p.batch, p.dim, threads);
    const auto widen = [&](const float* rows, int64_t n) {
      double norm, fourth;
      row_shape(norm, fourth, rows, n, p.dim, threads);
      shapes.x_norm = std::max(shapes.x_norm, norm);
      shapes.x_fourth = std::max(shapes.x_fourth, fourth);
    };
    if (p.visual && p.alpha > 0) widen(p.visual, p.batch);
    if (p.text && p.beta > 0) widen(p.text, p.batch);
    if (p.shuffled && p.gamma > 0) widen(p.shuffled, p.query_rows() * p.k);
  }
  if (!(shapes.q_fourth > 0 && shapes.x_fourth > 0)) return Precision::Bf16;  // all-zero rows
  // sum_d q^_d^2 x^_d^2 <= sqrt(sum q^4 sum x^4) = 1 / d_eff (Cauchy-Schwarz).
  const double d_eff = 1.0 / std::sqrt(shapes.q_fourth * shapes.x_fourth);
  double scale = p.temperature * std::sqrt(d_eff);
  if (!p.normalize) scale /= std::max(shapes.q_norm * shapes.x_norm, 1e-300);  // logits scale with the norms
  return scale >= 0.045 ? Precision::Bf16 : Precision::Fp32;
}

StripProducts::StripProducts(bool bf16, int64_t batch, int64_t dim, int64_t strip_rows, int threads,
                             bool grads)
    : bf16_(bf16), B_(batch), D_(dim), R_(strip_rows), threads_(threads), grads_(grads) {
  if (!bf16_) {
    qt_.resize(packed_b_floats(D_, R_));
    if (grads_) qn_.resize(packed_b_floats(R_, D_));
    return;
  }
  q_scratch_.resize(R_ * D_);
  qt16_.resize(packed_b_bf16_elems(D_, R_));
  if (grads_) {
    qn16_.resize(packed_b_bf16_elems(R_, D_));
    dqt_.resize(D_ * R_);
  }
}

void StripProducts::set_documents(int t, const float* x) {
  x_[t] = x;
  if (!bf16_) return;
  // Rows for the logits; for dQ the transpose.
  const int64_t ldt = transposed_stride();
  x16_[t].resize(B_ * D_);
  if (grads_) xt16_[t].resize(D_ * ldt);
  constexpr int64_t kRows = 256;  // even: only the last block can write a pad column
  parallel_for(threads_, (B_ + kRows - 1) / kRows, [&](int64_t item, int) {
    const int64_t r0 = item * kRows, rows = std::min(kRows, B_ - r0);
    convert_rows_bf16(x16_[t].data() + r0 * D_, D_, x + r0 * D_, D_, rows, D_, nullptr);
    if (grads_) convert_transposed_bf16(xt16_[t].data() + r0, ldt, x + r0 * D_, D_, rows, D_, nullptr);
  });
}

void StripProducts::load_queries(const float* q, const float* inv, int64_t nq) {
  nq_ = nq;
  if (!bf16_) {
    pack_queries(qt_.data(), grads_ ? qn_.data() : nullptr, q, inv, nq, D_);
    return;
  }
  // The normalised rows in fp32 first, so bf16 rounds q^ itself (one rounding).
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t d = 0; d < D_; ++d) q_scratch_[i * D_ + d] = q[i * D_ + d] * inv[i];
  pack_bt_bf16(qt16_.data(), q_scratch_.data(), D_, D_, nq);
  if (grads_) pack_b_bf16(qn16_.data(), q_scratch_.data(), D_, nq, D_);
}

void StripProducts::logits(float* z, int64_t ldz, int t, int64_t c0, int64_t nd, const float* factor) const {
  if (!bf16_)
    logit_tile(z, ldz, x_[t] + c0 * D_, qt_.data(), factor, nd, nq_, D_);
  else
    logit_tile_bf16(z, ldz, x16_[t].data() + c0 * D_, qt16_.data(), factor, nd, nq_, D_);
}

double StripProducts::ms_logit(const float* q, float q_inv, const float* s, float s_inv, double inv_tau) const {
  return bf16_ ? cpu::ms_logit_bf16(q, q_inv, s, s_inv, D_, inv_tau) : cpu::ms_logit(q, q_inv, s, s_inv, D_, inv_tau);
}

void StripProducts::document_gradient(float* dx, const float* g, int64_t ldg, int64_t nd, bool accumulate) const {
  if (!bf16_) {
    gemm_packed(dx, D_, g, ldg, 1, qn_.data(), nd, D_, nq_, accumulate);
    return;
  }
  // The coefficients as bf16 rows (the broadcast operand), in this thread's buffer.
  thread_local std::vector<bf16> g16;
  const int64_t ld16 = round_up(nq_, 2);
  if (g16.size() < static_cast<size_t>(nd * ld16)) g16.resize(nd * ld16);
  convert_rows_bf16(g16.data(), ld16, g, ldg, nd, nq_, nullptr);
  gemm_bf16_packed(dx, D_, g16.data(), ld16, qn16_.data(), nd, D_, nq_, accumulate);
}

void StripProducts::query_gradient(float* dq, int t, const float* g, int64_t ldg, bool accumulate) {
  if (!bf16_) {
    // dQ = G'^T X split by columns of dQ; gemm packs each X chunk as it goes.
    const int64_t chunk = piece(D_, threads_, 32);
    parallel_for(threads_, (D_ + chunk - 1) / chunk, [&](int64_t item, int) {
      const int64_t d0 = item * chunk, nd = std::min(chunk, D_ - d0);
      gemm(dq + d0, D_, g, 1, ldg, x_[t] + d0, D_, nq_, nd, B_, accumulate);
    });
    return;
  }
  // bf16: dQ^T (D x nq) (+)= X^T G', with G' packed (rows of documents per item, read
  // contiguously); then the rows of dQ^T each item computed, transposed into dq.
  g16_.resize(packed_b_bf16_elems(B_, nq_));
  constexpr int64_t kPackRows = 256;  // even: items start on a pair
  parallel_for(threads_, (B_ + kPackRows - 1) / kPackRows, [&](int64_t item, int) {
    const int64_t p0 = item * kPackRows;
    pack_b_bf16_rows(g16_.data(), g, ldg, B_, nq_, p0, std::min(B_, p0 + kPackRows));
  });
  const int64_t ldt = transposed_stride();
  const int64_t chunk = piece(D_, threads_, 12);
  parallel_for(threads_, (D_ + chunk - 1) / chunk, [&](int64_t item, int) {
    const int64_t d0 = item * chunk, nd = std::min(chunk, D_ - d0);
    float* c = dqt_.data() + d0 * nq_;
    gemm_bf16_packed(c, nq_, xt16_[t].data() + d0 * ldt, ldt, g16_.data(), nd, nq_, B_, accumulate);
    for (int64_t i = 0; i < nq_; ++i)
      for (int64_t d = 0; d < nd; ++d) dq[i * D_ + d0 + d] = c[d * nq_ + i];
  });
}

}  // namespace mbvr::cpu
