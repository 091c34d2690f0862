#include "softmax_tiles.h"

#include <cmath>
#include <limits>

#include "simd.h"

namespace mbvr::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The exponentials loss_math.h's templates call, on 16 lanes and on one float.
struct Exp16 {
  MBVR_INLINE vf16 operator()(vf16 x) const { return exp16(x); }
};
struct ExpApprox {
  MBVR_INLINE float operator()(float x) const { return exp_approx(x); }
};

// A shift that keeps exp finite for an all-masked column (max -inf).
MBVR_INLINE float safe_shift(float m) { return m == kNegInf ? 0.0f : m; }
MBVR_INLINE vf16 safe_shift16(vf16 m) { return m == splat16(kNegInf) ? vf16{} : m; }

// Per document row: max over its queries, then sum exp(z - max); 16 lanes, then in
// lane order.
MBVR_INLINE float row_max(const float* z, int64_t n) {
  int64_t i = 0;
  float m = kNegInf;
  if (n >= kLanes) {
    vf16 lane = load16(z);
    for (i = kLanes; i + kLanes <= n; i += kLanes) lane = max16(lane, load16(z + i));
    m = max_lanes(lane);
  }
  for (; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

MBVR_INLINE double row_sum_exp(const float* z, int64_t n, float shift) {
  Acc16 lane;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) lane.add(exp16(load16(z + i) - shift));
  double s = lane.sum();
  for (; i < n; ++i) s += exp_approx(z[i] - shift);
  return s;
}

// q_max[i] = max over the rows of column i.
MBVR_INLINE void column_max(float* q_max, const float* z, int64_t nd, int64_t nq, int64_t ld) {
  int64_t i = 0;
  for (; i + kLanes <= nq; i += kLanes) {
    vf16 m = splat16(kNegInf);
    for (int64_t j = 0; j < nd; ++j) m = max16(m, load16(z + j * ld + i));
    store16(q_max + i, m);
  }
  for (; i < nq; ++i) {
    float m = kNegInf;
    for (int64_t j = 0; j < nd; ++j) m = z[j * ld + i] > m ? z[j * ld + i] : m;
    q_max[i] = m;
  }
}

}  // namespace

MBVR_DISPATCH
void lse_partials_simd(math::LseState* doc_stats, float* q_max, double* q_sum, const float* z, int64_t nd,
                       int64_t nq, int64_t ld) {
  for (int64_t j = 0; j < nd; ++j) {
    const float* zj = z + j * ld;
    const float m = row_max(zj, nq);
    if (m != kNegInf) math::lse_merge(doc_stats[j], m, row_sum_exp(zj, nq, m));
  }
  column_max(q_max, z, nd, nq, ld);
  int64_t i = 0;
  for (; i + kLanes <= nq; i += kLanes) {
    const vf16 shift = safe_shift16(load16(q_max + i));
    Acc16 sum;
    for (int64_t j = 0; j < nd; ++j) sum.add(exp16(load16(z + j * ld + i) - shift));
    sum.store(q_sum + i);
  }
  for (; i < nq; ++i) {
    const float shift = safe_shift(q_max[i]);
    double sum = 0;
    for (int64_t j = 0; j < nd; ++j) sum += exp_approx(z[j * ld + i] - shift);
    q_sum[i] = sum;
  }
}
void lse_partials(math::LseState* doc_stats, float* q_max, double* q_sum, const float* z, int64_t nd,
                  int64_t nq, int64_t ld) {
  lse_partials_simd(doc_stats, q_max, q_sum, z, nd, nq, ld);
}

MBVR_DISPATCH
void exp_partials_simd(float* z, float* q_max, double* q_sum, double* q_ez, int64_t nd, int64_t nq,
                       int64_t ld) {
  column_max(q_max, z, nd, nq, ld);
  int64_t i = 0;
  for (; i + kLanes <= nq; i += kLanes) {
    const vf16 shift = safe_shift16(load16(q_max + i));
    Acc16 sum, ez;
    for (int64_t j = 0; j < nd; ++j) {
      float* p = z + j * ld + i;
      const vf16 zz = load16(p);
      const vf16 e = exp16(zz - shift);
      sum.add(e);
      ez.add(math::dtau_term(e, zz));  // masked entries and positives (-inf) stay out
      store16(p, e);
    }
    sum.store(q_sum + i);
    ez.store(q_ez + i);
  }
  for (; i < nq; ++i) {
    const float shift = safe_shift(q_max[i]);
    double sum = 0, ez = 0;
    for (int64_t j = 0; j < nd; ++j) {
      float& zz = z[j * ld + i];
      const float e = exp_approx(zz - shift);
      sum += e;
      ez += math::dtau_term(e, zz);
      zz = e;
    }
    q_sum[i] = sum;
    q_ez[i] = ez;
  }
}
void exp_partials(float* z, float* q_max, double* q_sum, double* q_ez, int64_t nd, int64_t nq,
                  int64_t ld) {
  exp_partials_simd(z, q_max, q_sum, q_ez, nd, nq, ld);
}

MBVR_DISPATCH
void scale_exp_tile_simd(float* z, const float* q_factor, const float* doc_scale, int64_t nd,
                         int64_t nq, int64_t ld) {
  for (int64_t j = 0; j < nd; ++j) {
    float* zj = z + j * ld;
    const float s = doc_scale[j];
    int64_t i = 0;
    for (; i + kLanes <= nq; i += kLanes) store16(zj + i, load16(zj + i) * load16(q_factor + i) * s);
    for (; i < nq; ++i) zj[i] = zj[i] * q_factor[i] * s;
  }
}
void scale_exp_tile(float* z, const float* q_factor, const float* doc_scale, int64_t nd,
                    int64_t nq, int64_t ld) {
  scale_exp_tile_simd(z, q_factor, doc_scale, nd, nq, ld);
}

MBVR_DISPATCH
double fused_grad_tile_simd(float* z, const float* lse_q, const float* lse_d,
                            const float* doc_scale, float scale, int64_t nd, int64_t nq, int64_t ld) {
  double dot = 0;
  for (int64_t j = 0; j < nd; ++j) {
    float* zj = z + j * ld;
    const float ld_j = lse_d[j], s = doc_scale[j];
    vf16 lane{};
    int64_t i = 0;
    for (; i + kLanes <= nq; i += kLanes) {
      const vf16 zz = load16(zj + i);
      const vf16 g = math::fused_grad(zz, load16(lse_q + i), splat16(ld_j), splat16(scale), Exp16{});
      lane += math::dtau_term(g, zz);
      store16(zj + i, g * s);
    }
    dot += sum_lanes(lane);
    for (; i < nq; ++i) {
      const float zz = zj[i];
      const float g = math::fused_grad(zz, lse_q[i], ld_j, scale, ExpApprox{});
      dot += math::dtau_term(g, zz);
      zj[i] = g * s;
    }
  }
  return dot;
}
double fused_grad_tile(float* z, const float* lse_q, const float* lse_d, const float* doc_scale,
                       float scale, int64_t nd, int64_t nq, int64_t ld) {
  return fused_grad_tile_simd(z, lse_q, lse_d, doc_scale, scale, nd, nq, ld);
}

}  // namespace mbvr::cpu
