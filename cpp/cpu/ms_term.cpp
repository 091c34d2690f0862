#include "ms_term.h"

#include <algorithm>

#include "thread_pool.h"

namespace mbvr::cpu {
namespace {
int64_t chunks(int64_t rows, int64_t chunk) { return (rows + chunk - 1) / chunk; }
}  // namespace

void ms_forward(MsTerm& out, const RowScales& q, const RowScales& s, const float* positive, int64_t rows,
                int64_t k, int64_t dim, int64_t chunk, const MsLogit& ms_logit, int threads) {
  out.rows = rows;
  out.k = k;
  out.logits.assign(static_cast<size_t>(rows * k), 0.0);
  out.row.assign(static_cast<size_t>(rows), math::MsRow{0.0, 0.0});
  parallel_for(threads, chunks(rows, chunk), [&](int64_t c, int) {
    for (int64_t i = c * chunk; i < std::min(rows, (c + 1) * chunk); ++i) {
      double* zs = out.logits.data() + i * k;
      for (int64_t n = 0; n < k; ++n) {
        const int64_t r = i * k + n;
        zs[n] = ms_logit(q.rows + i * dim, q.inv[i], s.rows + r * dim, s.inv[r]);
      }
      out.row[i] = math::ms_forward(positive[i], zs, k);
    }
  });
}

double ms_backward(float* dq, float* ds, const MsTerm& ms, const RowScales& q, const RowScales& s, int64_t dim,
                   double gamma_over_b, int64_t chunk, int threads) {
  const int64_t k = ms.k;
  std::vector<double> gz(static_cast<size_t>(chunks(ms.rows, chunk)), 0.0);
  parallel_for(threads, chunks(ms.rows, chunk), [&](int64_t c, int) {
    double sum = 0;
    for (int64_t i = c * chunk; i < std::min(ms.rows, (c + 1) * chunk); ++i) {
      const float* qi = q.rows + i * dim;
      for (int64_t n = 0; n < k; ++n) {
        const int64_t r = i * k + n;
        const double zs = ms.logits[r];
        const double g = math::ms_negative_grad(zs, ms.row[i].lse, gamma_over_b);
        sum += math::dtau_term(g, zs);
        const float* sk = s.rows + r * dim;
        if (dq) {  // dq^ += g s^
          const double gs = g * s.inv[r];
          for (int64_t d = 0; d < dim; ++d) dq[i * dim + d] += static_cast<float>(gs * sk[d]);
        }
        if (ds) {  // ds^ = g q^
          const double gq = g * q.inv[i];
          for (int64_t d = 0; d < dim; ++d) ds[r * dim + d] = static_cast<float>(gq * qi[d]);
        }
      }
    }
    gz[c] = sum;
  });
  double total = 0;
  for (double v : gz) total += v;
  return total;
}

}  // namespace mbvr::cpu
