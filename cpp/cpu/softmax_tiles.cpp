#include "softmax_tiles.h"

#include <cmath>
#include <limits>

#include "simd.h"

namespace mbvr::cpu {
namespace {

constexpr int L = 16;  // reduction lanes
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

MBVR_INLINE void merge(LseState& s, float tile_max, double tile_sum) {
  if (tile_max == kNegInf) return;  // every entry masked
  if (tile_max > s.max) {
    s.sum = s.sum * std::exp(s.max - tile_max) + tile_sum;
    s.max = tile_max;
  } else {
    s.sum += tile_sum * std::exp(static_cast<double>(tile_max) - s.max);
  }
}

MBVR_INLINE float row_max(const float* z, int64_t n) {
  float lane[L];
  for (int l = 0; l < L; ++l) lane[l] = kNegInf;
  int64_t j = 0;
  for (; j + L <= n; j += L)
    for (int l = 0; l < L; ++l) lane[l] = z[j + l] > lane[l] ? z[j + l] : lane[l];
  float m = kNegInf;
  for (; j < n; ++j) m = z[j] > m ? z[j] : m;
  for (int l = 0; l < L; ++l) m = lane[l] > m ? lane[l] : m;
  return m;
}

MBVR_INLINE double row_sum_exp(const float* z, int64_t n, float shift) {
  float lane[L] = {};
  int64_t j = 0;
  for (; j + L <= n; j += L)
    for (int l = 0; l < L; ++l) lane[l] += exp_approx(z[j + l] - shift);
  double s = 0;
  for (; j < n; ++j) s += exp_approx(z[j] - shift);
  for (int l = 0; l < L; ++l) s += lane[l];
  return s;
}

}  // namespace

MBVR_DISPATCH
void lse_update_rows(LseState* rows, const float* z, int64_t nr, int64_t nc) {
  for (int64_t i = 0; i < nr; ++i) {
    const float* zi = z + i * nc;
    const float m = row_max(zi, nc);
    if (m == kNegInf) continue;
    merge(rows[i], m, row_sum_exp(zi, nc, m));
  }
}

MBVR_DISPATCH
void lse_update_cols(LseState* cols, const float* z, int64_t nr, int64_t nc, float* colmax) {
  for (int64_t j = 0; j < nc; ++j) colmax[j] = kNegInf;
  for (int64_t i = 0; i < nr; ++i)
    for (int64_t j = 0; j < nc; ++j) colmax[j] = z[i * nc + j] > colmax[j] ? z[i * nc + j] : colmax[j];
  // Column sums accumulate row by row (a fixed order), in float per tile.
  constexpr int64_t CB = 256;  // columns per strip, keeps the partial sums in L1
  float part[CB];
  for (int64_t j0 = 0; j0 < nc; j0 += CB) {
    const int64_t n = nc - j0 < CB ? nc - j0 : CB;
    for (int64_t j = 0; j < n; ++j) part[j] = 0.0f;
    for (int64_t i = 0; i < nr; ++i) {
      const float* zi = z + i * nc + j0;
      const float* cm = colmax + j0;
      for (int64_t j = 0; j < n; ++j) part[j] += exp_approx(zi[j] - (cm[j] == kNegInf ? 0.0f : cm[j]));
    }
    for (int64_t j = 0; j < n; ++j) merge(cols[j0 + j], colmax[j0 + j], part[j]);
  }
}

MBVR_DISPATCH
double softmax_grad_tile(float* z, int64_t nr, int64_t nc, const float* lse_row,
                         const float* lse_col, bool diagonal, float scale) {
  double dot = 0;  // sum g * z
  for (int64_t i = 0; i < nr; ++i) {
    float* zi = z + i * nc;
    const float lr = lse_row[i];
    const bool has_positive = diagonal && i < nc;
    const float z_positive = has_positive ? zi[i] : 0.0f;
    float lane[L] = {};
    int64_t j = 0;
    // Masked entries are -inf: exp gives 0, and the select keeps 0 * inf out of `dot`.
    if (lse_col) {
      for (; j + L <= nc; j += L)
        for (int l = 0; l < L; ++l) {
          const float zz = zi[j + l];
          const float g = scale * (exp_approx(zz - lr) + exp_approx(zz - lse_col[j + l]));
          lane[l] += zz == kNegInf ? 0.0f : g * zz;
          zi[j + l] = g;
        }
      for (; j < nc; ++j) {
        const float zz = zi[j];
        const float g = scale * (exp_approx(zz - lr) + exp_approx(zz - lse_col[j]));
        dot += zz == kNegInf ? 0.0f : g * zz;
        zi[j] = g;
      }
    } else {
      for (; j + L <= nc; j += L)
        for (int l = 0; l < L; ++l) {
          const float zz = zi[j + l];
          const float g = scale * exp_approx(zz - lr);
          lane[l] += zz == kNegInf ? 0.0f : g * zz;
          zi[j + l] = g;
        }
      for (; j < nc; ++j) {
        const float zz = zi[j];
        const float g = scale * exp_approx(zz - lr);
        dot += zz == kNegInf ? 0.0f : g * zz;
        zi[j] = g;
      }
    }
    for (int l = 0; l < L; ++l) dot += lane[l];
    if (has_positive) {
      // The positive (never masked) belongs to one softmax per direction: subtract its
      // indicator once for each, in g and in sum g * z.
      const float indicator = scale * (lse_col ? 2.0f : 1.0f);
      zi[i] -= indicator;
      dot -= static_cast<double>(indicator) * z_positive;
    }
  }
  return dot;
}

}  // namespace mbvr::cpu
