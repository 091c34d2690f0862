// The CUDA harness's float64 reference: docs/math.md sections 2 and 3 written out in plain
// loops over B x B matrices, in double. Plain C++ (no CUDA), so that two programs share it:
//   - check_kernels.cu compares every kernel version and precision with it;
//   - reference64_main.cpp, compiled with g++ by test/transcriptions.test.ts, lets the test
//     hold it to src/reference.ts (the project's oracle) at ~1e-9 on fresh random cases.
//
// Every softmax keeps its positive apart (docs/math.md §3.1): from the statistics of the
// other entries, a = log(sum_others e^z) - z_pos, the term's loss is softplus(a) and the
// positive's dL/dz is expm1(-softplus(a)) = p_pos - 1. Both stay exact when the positive
// dominates (a << 0), where logsumexp - z_pos and p_pos - 1 would cancel to rounding noise
// and a relative comparison of confident cases would be meaningless.
//
// Conventions (as the kernels'): G matrices hold dL/dz (already divided by B and weighted);
// gradients are accumulated with respect to the normalised rows x^ and turned into
// gradients of the raw rows last (§3.5, §3.6).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace mbvr::ref64 {

// The inputs of one loss call, float32 as the addon takes them.
struct Inputs {
  std::vector<float> q, m, v, t;  // B x D each: query, fused, visual, text (v, t may be empty)
  std::vector<float> s;           // B x K x D: shuffled (may be empty)
  std::vector<float> margin;      // B per-row margins, or empty (then Options::margin)
  std::vector<int32_t> labels;    // B video ids, or empty (no duplicates)
};

struct Options {
  int64_t B = 0, D = 0, K = 1;
  double tau = 0.05, alpha = 1, beta = 1, gamma = 1;
  bool normalize = true;
  double margin = 0;  // delta of every row when Inputs::margin is empty
  bool grads = true;
  bool want[5] = {true, true, true, true, true};  // d_query, d_fused, d_visual, d_text, d_shuffled
};

struct Result {
  double loss = 0, qm = 0, mq = 0, v = 0, t = 0, ms = 0, dtau = 0;
  std::vector<double> g[5];  // d_query, d_fused, d_visual, d_text, d_shuffled (empty: not asked or not given)
};

constexpr double kNormEps = 1e-12;

// log(1 + e^a) without overflow (a >> 0) or loss of the small value (a << 0).
inline double softplus(double a) { return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a)); }

// One softmax whose positive z_pos is kept apart from the n other entries `others`
// (docs/math.md §3.1). Writes each other entry's probability into p and returns the loss
// -log p_pos = softplus(a) and the positive's p_pos - 1 = expm1(-loss). With no other
// entry the softmax is the positive alone: loss 0, gradient 0.
struct PositiveApart {
  double loss;
  double pos_minus_one;
};
inline PositiveApart softmax_positive_apart(const double* others, int64_t n, double z_pos, double* p) {
  if (n == 0) return {0.0, 0.0};
  double mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, others[j]);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(others[j] - mx);
  const double loss = softplus(mx + std::log(sum) - z_pos);
  const double lse = z_pos + loss;  // log-sum-exp over every entry, positive included
  for (int64_t j = 0; j < n; ++j) p[j] = std::exp(others[j] - lse);
  return {loss, std::expm1(-loss)};
}

// x^ = x / max(||x||, eps) per row (x itself without normalisation); norm keeps ||x||.
inline void normalize_rows(const std::vector<float>& x, int64_t rows, int64_t D, bool normalize,
                           std::vector<double>& hat, std::vector<double>& norm) {
  hat.assign(rows * D, 0.0);
  norm.assign(rows, 1.0);
  for (int64_t i = 0; i < rows; ++i) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += double(x[i * D + d]) * x[i * D + d];
    norm[i] = std::sqrt(ss);
    const double div = normalize ? std::max(norm[i], kNormEps) : 1.0;
    for (int64_t d = 0; d < D; ++d) hat[i * D + d] = x[i * D + d] / div;
  }
}

// In place, dL/dx^ -> dL/dx through x^ = x / max(||x||, eps) (§3.6): the projection
// removes the component along x^; a clamped row (||x|| < eps, the divisor a constant)
// only scales, as PyTorch's clamp_min backward does.
inline void normalize_backward(std::vector<double>& g, const std::vector<double>& hat,
                               const std::vector<double>& norm, int64_t rows, int64_t D, bool normalize) {
  if (!normalize) return;
  for (int64_t i = 0; i < rows; ++i) {
    if (norm[i] < kNormEps) {
      for (int64_t d = 0; d < D; ++d) g[i * D + d] /= kNormEps;
      continue;
    }
    double proj = 0;
    for (int64_t d = 0; d < D; ++d) proj += hat[i * D + d] * g[i * D + d];
    for (int64_t d = 0; d < D; ++d) g[i * D + d] = (g[i * D + d] - hat[i * D + d] * proj) / norm[i];
  }
}

// The loss, its terms, dL/dtau and the wanted gradients of one call.
inline Result loss(const Options& o, const Inputs& x) {
  const int64_t B = o.B, D = o.D, K = o.K;
  const double tau = o.tau, inv_b = 1.0 / double(B);
  const bool use_v = o.alpha > 0 && !x.v.empty(), use_t = o.beta > 0 && !x.t.empty();
  const bool use_s = o.gamma > 0 && !x.s.empty();

  std::vector<double> qh, mh, vh, th, sh, nq, nm, nv, nt, ns;
  normalize_rows(x.q, B, D, o.normalize, qh, nq);
  normalize_rows(x.m, B, D, o.normalize, mh, nm);
  if (!x.v.empty()) normalize_rows(x.v, B, D, o.normalize, vh, nv);
  if (!x.t.empty()) normalize_rows(x.t, B, D, o.normalize, th, nt);
  if (!x.s.empty()) normalize_rows(x.s, B * K, D, o.normalize, sh, ns);

  // The allowed set (§2): j == i, or a different video id.
  auto allowed = [&](int64_t i, int64_t j) { return i == j || x.labels.empty() || x.labels[i] != x.labels[j]; };
  auto margin = [&](int64_t i) { return x.margin.empty() ? o.margin : double(x.margin[i]); };

  // z_ij = (q^_i . x^_j - delta_i [i == j and fused]) / tau.
  auto logits = [&](const std::vector<double>& xh, bool fused, std::vector<double>& z) {
    z.assign(B * B, 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < B; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += qh[i * D + d] * xh[j * D + d];
        if (fused && i == j) dot -= margin(i);
        z[i * B + j] = dot / tau;
      }
  };

  // One softmax per row i over the allowed columns (by_rows), or per column j over the
  // allowed rows, its positive on the diagonal: adds weight / B * (P - [positive]) into G
  // and returns the mean loss.
  auto softmax_term = [&](const std::vector<double>& z, double weight, bool by_rows, std::vector<double>& G) {
    double sum = 0;
    std::vector<double> others(B), p(B);
    std::vector<int64_t> at(B);
    for (int64_t a = 0; a < B; ++a) {
      int64_t n = 0;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t i = by_rows ? a : b, j = by_rows ? b : a;
        if (b == a || !allowed(i, j)) continue;
        at[n] = i * B + j;
        others[n++] = z[i * B + j];
      }
      const PositiveApart s = softmax_positive_apart(others.data(), n, z[a * B + a], p.data());
      sum += s.loss;
      for (int64_t e = 0; e < n; ++e) G[at[e]] += weight * inv_b * p[e];
      G[a * B + a] += weight * inv_b * s.pos_minus_one;
    }
    return sum * inv_b;
  };

  Result r;
  std::vector<double> zf, zv, zt, Gf(B * B, 0.0), Gv, Gt;
  logits(mh, true, zf);
  r.qm = softmax_term(zf, 1.0, true, Gf);
  r.mq = softmax_term(zf, 1.0, false, Gf);
  if (use_v) {
    logits(vh, false, zv);
    Gv.assign(B * B, 0.0);
    r.v = softmax_term(zv, o.alpha, true, Gv);
  }
  if (use_t) {
    logits(th, false, zt);
    Gt.assign(B * B, 0.0);
    r.t = softmax_term(zt, o.beta, true, Gt);
  }
  // L_ms (§3.4): per row the fused positive z_ii against its K shuffled logits; the
  // positive's share of the gradient goes to the fused diagonal.
  std::vector<double> zs(B * K, 0.0), Gs(B * K, 0.0);
  if (use_s) {
    std::vector<double> p(K);
    for (int64_t i = 0; i < B; ++i) {
      for (int64_t k = 0; k < K; ++k) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += qh[i * D + d] * sh[(i * K + k) * D + d];
        zs[i * K + k] = dot / tau;
      }
      const PositiveApart s = softmax_positive_apart(&zs[i * K], K, zf[i * B + i], p.data());
      r.ms += s.loss * inv_b;
      Gf[i * B + i] += o.gamma * inv_b * s.pos_minus_one;
      for (int64_t k = 0; k < K; ++k) Gs[i * K + k] = o.gamma * inv_b * p[k];
    }
  }
  r.loss = r.qm + r.mq + o.alpha * r.v + o.beta * r.t + o.gamma * r.ms;
  if (!o.grads) return r;

  // dL/dtau = -(1/tau) sum over every logit used of dL/dz * z (§3.7).
  double gz = 0;
  for (int64_t e = 0; e < B * B; ++e) {
    gz += Gf[e] * zf[e];
    if (use_v) gz += Gv[e] * zv[e];
    if (use_t) gz += Gt[e] * zt[e];
  }
  for (int64_t e = 0; e < B * K; ++e) gz += Gs[e] * zs[e];
  r.dtau = -gz / tau;

  // From logits to rows (§3.5): dq^_i = sum_j G_ij x^_j / tau over the terms plus the MS
  // part; dx^_j = sum_i G_ij q^_i / tau; ds^_ik = Gs_ik q^_i / tau. Then §3.6.
  const bool given[5] = {true, true, !x.v.empty(), !x.t.empty(), !x.s.empty()};
  const bool used[3] = {true, use_v, use_t};
  const std::vector<double>* G3[3] = {&Gf, &Gv, &Gt};
  const std::vector<double>* X3[3] = {&mh, &vh, &th};
  const std::vector<double>* N3[3] = {&nm, &nv, &nt};
  if (o.want[0]) {
    std::vector<double>& g = r.g[0];
    g.assign(B * D, 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < B; ++i) {
      for (int u = 0; u < 3; ++u) {
        if (!used[u]) continue;
        for (int64_t j = 0; j < B; ++j) {
          const double gij = (*G3[u])[i * B + j] / tau;
          for (int64_t d = 0; d < D; ++d) g[i * D + d] += gij * (*X3[u])[j * D + d];
        }
      }
      if (use_s)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t d = 0; d < D; ++d) g[i * D + d] += Gs[i * K + k] / tau * sh[(i * K + k) * D + d];
    }
    normalize_backward(g, qh, nq, B, D, o.normalize);
  }
  for (int u = 0; u < 3; ++u) {
    if (!o.want[1 + u] || !given[1 + u]) continue;
    std::vector<double>& g = r.g[1 + u];
    g.assign(B * D, 0.0);  // an input given with weight 0 gets a zero gradient
    if (!used[u]) continue;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < B; ++j)
      for (int64_t i = 0; i < B; ++i) {
        const double gij = (*G3[u])[i * B + j] / tau;
        for (int64_t d = 0; d < D; ++d) g[j * D + d] += gij * qh[i * D + d];
      }
    normalize_backward(g, *X3[u], *N3[u], B, D, o.normalize);
  }
  if (o.want[4] && given[4]) {
    std::vector<double>& g = r.g[4];
    g.assign(B * K * D, 0.0);
    if (use_s) {
      for (int64_t i = 0; i < B; ++i)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t d = 0; d < D; ++d) g[(i * K + k) * D + d] = Gs[i * K + k] / tau * qh[i * D + d];
      normalize_backward(g, sh, ns, B * K, D, o.normalize);
    }
  }
  return r;
}

}  // namespace mbvr::ref64
