// The per-element and per-row math of the loss (docs/math.md §2-§4), written once and
// compiled by both backends: as plain C++ by cpp/cpu/ and as __host__ __device__ code by
// cpp/cuda/. The backends differ in how they tile, order and parallelise the work; what
// a logit, a statistic, a probability or a gradient coefficient *is* comes from here.
//
// Value templates (`V`) run on scalars (float, double) and, on the CPU, on the 16-lane
// vectors of cpu/simd.h; `Exp` is the caller's exponential for that type (the CPU's
// vectorised exp16, CUDA's __expf or expf).
#pragma once

#include <cmath>
#include <cstdint>

// Always inlined: on the CPU these run inside loops compiled once per instruction set
// (simd.h's MBVR_DISPATCH), and an out-of-line copy would be baseline code.
// (The CPU's 16-lane vectors pass through these by value only between always-inlined
// functions, so GCC's note about their ABI does not apply.)
#if defined(__GNUC__) && !defined(__CUDACC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#if defined(__CUDACC__)
#define MBVR_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define MBVR_HD inline __attribute__((always_inline))
#else
#define MBVR_HD inline
#endif

namespace mbvr::math {

// ---------------------------------------------------------------------------------------
// §2 Logits. z = c / tau, with the margin lowering the fused positive; entries masked out
// of every soft-max (duplicates: same label, not the positive) are -inf.

// Rows are normalised by max(||x||, kNormEps), as torch.nn.functional.normalize.
constexpr double kNormEps = 1e-12;

// Whether entry (query i, document j) takes part in the soft-maxes: the positive always,
// another row unless it carries the query's label.
MBVR_HD bool allowed(int64_t i, int64_t j, bool labels, int32_t label_i, int32_t label_j) {
  return i == j || !labels || label_i != label_j;
}

// The positive's logit of a term: c_ii / tau, less margin / tau for the fused term.
template <class V>
MBVR_HD V positive_logit(V c, V margin, V inv_tau) {
  return (c - margin) * inv_tau;
}

// ---------------------------------------------------------------------------------------
// §4 A running log-sum-exp: (max, sum of e^(z - max)) over the entries seen so far; an
// empty one (or one whose entries are all masked) has max -inf and sum 0. Kept in double
// wherever it is merged: with one entry near 1 and the rest tiny (a confident soft-max) a
// float sum loses exactly the part the loss is made of.

struct LseState {
  double max;
  double sum;
};

MBVR_HD LseState lse_empty() { return {-INFINITY, 0.0}; }

// Merges a partial (max, sum) into a running (max, sum); an all-masked partial (max -inf)
// changes nothing. T = float where a kernel keeps its running values in registers.
template <class T>
MBVR_HD void lse_merge(T& max, T& sum, T part_max, T part_sum) {
  if (part_max == -INFINITY) return;
  if (part_max > max) {
    sum = sum * exp(max - part_max) + part_sum;  // exp(-inf) = 0 on the first merge
    max = part_max;
  } else {
    sum += part_sum * exp(part_max - max);
  }
}
MBVR_HD void lse_merge(LseState& s, double part_max, double part_sum) {
  lse_merge<double>(s.max, s.sum, part_max, part_sum);
}

// A partial's sum rescaled to a larger (global) maximum: how partial column statistics
// held by different ranks are brought to one scale before they are added (§6).
MBVR_HD double lse_rescale(double part_max, double part_sum, double global_max) {
  return part_max == -INFINITY ? 0.0 : part_sum * exp(part_max - global_max);
}

// ---------------------------------------------------------------------------------------
// §3.1 One soft-max term with its positive z kept apart from the statistics of the other
// entries. With a = log(sum_others e^z') - z:
//   lse_minus = logsumexp(all) - z = softplus(a)      the term's loss for this row
//   lse_full  = logsumexp(all)     = z + softplus(a)
//   positive_grad = p - 1 = expm1(-softplus(a))       dL/dz of the positive (unweighted)
// all without cancellation when the positive dominates (a << 0), where logsumexp(all) - z
// would subtract two nearly equal numbers and p - 1 would lose every digit.

MBVR_HD double softplus(double a) { return a > 0 ? a + log1p(exp(-a)) : log1p(exp(a)); }

MBVR_HD double lse_minus(const LseState& others, double z) {
  if (!(others.sum > 0)) return 0.0;  // no other entry: the soft-max is the positive alone
  return softplus(others.max + log(others.sum) - z);
}

MBVR_HD double lse_full(const LseState& others, double z) { return z + lse_minus(others, z); }

MBVR_HD double positive_grad(const LseState& others, double z) { return expm1(-lse_minus(others, z)); }

// dL/dz of an entry that is not a positive: its probability in each soft-max it belongs
// to (lse = that soft-max's full log-sum-exp), times weight / B (`scale`).
//   one soft-max (L_qm rows of visual/text; column or row side alone):  scale e^(z - lse)
//   the fused term (a query's row soft-max and a document's column one): the sum of both
template <class V, class Exp>
MBVR_HD V softmax_grad(V z, V lse, V scale, Exp exp_fn) {
  return scale * exp_fn(z - lse);
}
template <class V, class Exp>
MBVR_HD V fused_grad(V z, V lse_row, V lse_col, V scale, Exp exp_fn) {
  return scale * (exp_fn(z - lse_row) + exp_fn(z - lse_col));
}

// ---------------------------------------------------------------------------------------
// §3.4 The modality-shuffled term of one row: a soft-max over (z_ii, zs_i1 .. zs_iK) with
// the fused positive z_ii first. Its negatives are the "others" of §3.1.

struct MsRow {
  double loss;  // L_ms of the row: log(e^{z_ii} + sum_k e^{zs_ik}) - z_ii
  double lse;   // log(e^{z_ii} + sum_k e^{zs_ik})
};

template <class Logits>
MBVR_HD MsRow ms_forward(double z_pos, const Logits& zs, int64_t k) {
  LseState negatives = lse_empty();
  for (int64_t n = 0; n < k; ++n) negatives.max = fmax(negatives.max, static_cast<double>(zs[n]));
  negatives.sum = 0.0;
  for (int64_t n = 0; n < k; ++n) negatives.sum += exp(static_cast<double>(zs[n]) - negatives.max);
  const double loss = lse_minus(negatives, z_pos);
  return {loss, z_pos + loss};
}

// dL/dzs_ik of a negative: gamma / B * pi_k.
MBVR_HD double ms_negative_grad(double zs, double lse, double gamma_over_b) { return gamma_over_b * exp(zs - lse); }

// The MS term's share of the fused positive's gradient, gamma / B * (pi_0 - 1): added to
// the fused diagonal, so the positive's row of Q^ M^T carries it into dQ and dM (§3.4).
MBVR_HD double ms_positive_grad(const MsRow& row, double gamma_over_b) { return gamma_over_b * expm1(-row.loss); }

// ---------------------------------------------------------------------------------------
// §3.2-3.4 The positive's dL/dz, in double (it is the one coefficient that cancels):
//   fused:  (p_row - 1 + p_col - 1) / B + the MS share      visual/text: weight (p - 1) / B

MBVR_HD double fused_positive_grad(const LseState& row_others, const LseState& col_others, double z,
                                   double inv_b, double ms_share) {
  return inv_b * (positive_grad(row_others, z) + positive_grad(col_others, z)) + ms_share;
}

// ---------------------------------------------------------------------------------------
// §3.6 Normalisation backward. With x^ = x / max(||x||, eps) and u = dL/dx^ (times a
// constant `scale`, e.g. the 1/tau of the logits):
//   dx = (u - x^ (x^ . u)) * scale / ||x||   when ||x|| >= eps
//   dx = u * scale / eps                     otherwise (the divisor is then a constant)
//   dx = u * scale                           without normalisation

// The row factor scale / max(||x||, eps); whether the projection applies.
MBVR_HD double normalize_backward_factor(double norm, double scale) { return scale / fmax(norm, kNormEps); }
MBVR_HD bool normalize_backward_projects(double norm) { return norm >= kNormEps; }

template <class V>
MBVR_HD V normalize_backward(V u, V xhat, V proj, V factor) {
  return (u - xhat * proj) * factor;
}

// ---------------------------------------------------------------------------------------
// §3.7 dL/dtau = -(1/tau) sum over every logit used of dL/dz * z. A masked entry
// (z = -inf, g = 0) contributes nothing.

template <class V>
MBVR_HD V dtau_term(V g, V z) {
  return z == -INFINITY ? V{} : g * z;
}
MBVR_HD double dtau_from_sum(double sum_gz, double inv_tau) { return -sum_gz * inv_tau; }

}  // namespace mbvr::math
