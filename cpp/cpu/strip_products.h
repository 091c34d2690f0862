// The dense products of the loss (loss.cpp), for one strip of queries at a time, at the
// call's precision:
//   logits      z = X_block Q^_strip^T, scaled per document   (forward)
//   documents   dX_block (+)= G'^T Q^_strip                     (backward)
//   queries     dQ_strip = sum over terms of G'_t X_t           (backward)
// fp32 uses gemm.h (results within the 1e-5 of docs/math.md §5); bf16 (an opt-in precision, the 2e-2 of docs/math.md §5)
// rounds both operands of every product to bfloat16 and accumulates in fp32, at twice
// the speed on CPUs with AVX512-BF16 (gemm_bf16.h). loss.cpp does the same things in the
// same order at either precision: only these products differ.
//
// bf16 keeps, per call, each term's documents as bf16 rows (for the logits) and
// transposed (for dQ: dQ^T = X^T G' reads X^T as the broadcast operand and the gradient
// tile, packed, as the vector operand): 4 B D bytes per term (2 B D without gradients).
// Everything else is per strip.
#pragma once

#include <cstdint>
#include <vector>

#include "../mbvr.h"
#include "gemm_bf16.h"
#include "large_buffer.h"

namespace mbvr::cpu {

// The precision the products of a loss call run at: bf16 when asked for and accurate
// enough, else fp32 (tf32 is CUDA-only: the CPU computes fp32). bf16 rounding moves a
// logit c / tau by about 2^-9 sqrt(sum_d q^_d^2 x^_d^2) |q| |x| / tau: 1 / sqrt(D) for
// rows spread over all D coordinates, far more for rows whose weight sits in a few. So
// the rule uses an effective dimension, d_eff = 1 / sqrt(max_i sum q^_i^4 max_j sum x^_j^4)
// (about D / 4 for random rows, E / 3 for rows on E coordinates), and runs bf16 while
//   tau sqrt(d_eff) / (|q|max |x|max) >= 0.045   (norms 1 when normalising).
// Measured (random rows, and rows with all but E = 1..16 coordinates scaled by 0.01, D 16
// to 1024, tau 0.01 to 0.5): the worst relative error of the loss and every gradient is
// 7.6e-3 above that threshold and reaches 2.7e-2 (beyond the bound of 2e-2) below it; the plain
// tau sqrt(D) rule let 2.3e-2 through at D = 1024 with 2 active coordinates. Below it,
// and on a CPU without AVX512-BF16 (emulated bf16 would be slower than fp32 and less
// exact), the products run in fp32. MBVR_BF16_FALLBACK=0 / 1 forces never / always;
// =rule applies the rule even where bf16 is emulated.
// The rule also needs a batch of kBf16MinBatch documents or more. The errors of the
// logits are random, and a relative error taken over many rows and entries averages them
// out. With B <= 4, a loss term or gradient rests on a few entries: 2-3% of random calls
// above the threshold missed 2e-2, worst 0.35. For B from 5 to 16 the worst was 1.6e-2,
// and from 17 to 128 it was 5.9e-3. Products that small cost microseconds in fp32.
// (docs/math.md §5.) The row shapes come from p.shapes when given (a data-parallel call:
// the maxima over every rank), else from a scan of p's inputs.
constexpr int64_t kBf16MinBatch = 32;
Precision products_precision(const LossParams& p, int threads);

// The shapes of rows x dim rows (mbvr.h RowShapes): the largest norm, the largest
// sum x^4 / (sum x^2)^2 of a nonzero row.
void row_shape(double& max_norm, double& max_fourth, const float* x, int64_t rows, int64_t dim, int threads);

class StripProducts {
 public:
  StripProducts(bool bf16, int64_t batch, int64_t dim, int64_t strip_rows, int threads, bool grads);

  // Once per call, for each term t in use: its raw document rows (B x D).
  void set_documents(int t, const float* x);
  // Once per strip: the strip's nq raw query rows and their inverse norms.
  void load_queries(const float* q, const float* inv, int64_t nq);

  // z (nd x nq, row stride ldz) = (x_j . q^_i) * factor[j] for documents j = c0 .. c0 + nd
  // of term t: the logits when factor = inv_j / tau.
  void logits(float* z, int64_t ldz, int t, int64_t c0, int64_t nd, const float* factor) const;
  // The MS logit c(q, s) / tau of one query and one shuffled row (operand rows with their
  // factors, normalize.h), from operands rounded as the tiles' are: L_ms compares it with
  // a tile's positive.
  double ms_logit(const float* q, float q_inv, const float* s, float s_inv, double inv_tau) const;
  // dx (nd x D, row stride D) = or += G'^T Q^: g holds nd rows of nq gradient
  // coefficients (row stride ldg). Safe to call from parallel work items.
  void document_gradient(float* dx, const float* g, int64_t ldg, int64_t nd, bool accumulate) const;
  // dq (nq x D, row stride D) = or += G'^T X_t, g = B x nq coefficients (row stride ldg).
  // Runs its own parallel loop.
  void query_gradient(float* dq, int t, const float* g, int64_t ldg, bool accumulate);

 private:
  static constexpr int kTerms = 3;
  int64_t transposed_stride() const;
  const bool bf16_;
  const int64_t B_, D_, R_;
  const int threads_;
  const bool grads_;
  int64_t nq_ = 0;
  const float* x_[kTerms] = {nullptr, nullptr, nullptr};

  // fp32: the strip's normalised queries packed for gemm_packed (similarity.h).
  std::vector<float> qt_, qn_;
  // bf16: the same as bf16 panels; the documents as bf16 rows and transposed; a packed
  // gradient tile and the strip's dQ^T (summed over the terms, then transposed into dq).
  std::vector<float> q_scratch_;
  std::vector<bf16> qt16_, qn16_;
  LargeArray<bf16> x16_[kTerms], xt16_[kTerms];  // uninitialised until converted
  LargeArray<bf16> g16_;
  std::vector<float> dqt_;
};

}  // namespace mbvr::cpu
