// similarity() and shuffled_logits() on the CPU, and the logit tiles the loss uses.
#include "similarity.h"

#include <algorithm>
#include <vector>

#include "cpu_backend.h"
#include "gemm.h"
#include "simd.h"
#include "thread_pool.h"

namespace mbvr::cpu {

void pack_queries(float* qt, float* qn, const float* q, const float* inv, int64_t nq, int64_t dim) {
  pack_bt(qt, q, dim, dim, nq, inv);
  if (qn) pack_b(qn, q, dim, nq, dim, inv);
}

MBVR_DISPATCH
void scale_rows(float* z, int64_t ldz, const float* f, int64_t nd, int64_t nq) {
  for (int64_t j = 0; j < nd; ++j) {
    const float fj = f[j];
    float* zj = z + j * ldz;
    for (int64_t i = 0; i < nq; ++i) zj[i] *= fj;
  }
}

void logit_tile(float* z, int64_t ldz, const float* x, const float* qt, const float* doc_factor,
                int64_t nd, int64_t nq, int64_t dim) {
  gemm_packed(z, ldz, x, dim, 1, qt, nd, nq, dim, false);
  scale_rows(z, ldz, doc_factor, nd, nq);
}

void logit_tile_bf16(float* z, int64_t ldz, const bf16* x16, const bf16* qt16, const float* doc_factor,
                     int64_t nd, int64_t nq, int64_t dim) {
  gemm_bf16_packed(z, ldz, x16, dim, qt16, nd, nq, dim, false);
  scale_rows(z, ldz, doc_factor, nd, nq);
}

double ms_logit(const float* q, float q_inv, const float* s, float s_inv, int64_t dim,
                 double inv_tau) {
  double dot = 0;
  for (int64_t d = 0; d < dim; ++d) dot += static_cast<double>(q[d]) * s[d];
  return dot * q_inv * s_inv * inv_tau;
}

double ms_logit_bf16(const float* q, float q_inv, const float* s, float s_inv, int64_t dim,
                      double inv_tau) {
  // Rounded as the tiles round them: the query normalised, the document as its operand.
  double dot = 0;
  for (int64_t d = 0; d < dim; ++d)
    dot += static_cast<double>(from_bf16(to_bf16(q[d] * q_inv))) * from_bf16(to_bf16(s[d]));
  return dot * s_inv * inv_tau;
}

void similarity(float* out, const SimilarityParams& p) {
  const int threads = resolve_threads(p.threads);
  RowScales a, b;
  normalize_rows_forward(a, p.a, p.rows, p.dim, p.normalize, threads);
  normalize_rows_forward(b, p.b, p.cols, p.dim, p.normalize, threads);
  // Rows of `a` are the queries, rows of `b` the documents, as in the loss.
  constexpr int64_t kTile = 256;
  const int64_t row_tiles = (p.rows + kTile - 1) / kTile;
  const int64_t col_tiles = (p.cols + kTile - 1) / kTile;
  std::vector<float> factor(p.cols);
  for (int64_t j = 0; j < p.cols; ++j) factor[j] = static_cast<float>(b.inv[j] / p.temperature);
  const int64_t panel = packed_b_floats(p.dim, kTile);
  std::vector<float> qt(panel * row_tiles);
  parallel_for(threads, row_tiles, [&](int64_t r, int) {
    const int64_t r0 = r * kTile, nq = std::min(kTile, p.rows - r0);
    pack_queries(qt.data() + r * panel, nullptr, a.rows + r0 * p.dim, a.inv.data() + r0, nq, p.dim);
  });
  std::vector<std::vector<float>> tile(threads, std::vector<float>(kTile * kTile));
  parallel_for(threads, row_tiles * col_tiles, [&](int64_t item, int worker) {
    const int64_t r = item / col_tiles, c = item % col_tiles;
    const int64_t r0 = r * kTile, c0 = c * kTile;
    const int64_t nq = std::min(kTile, p.rows - r0), nd = std::min(kTile, p.cols - c0);
    float* z = tile[worker].data();
    logit_tile(z, kTile, b.rows + c0 * p.dim, qt.data() + r * panel, factor.data() + c0, nd, nq, p.dim);
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t j = 0; j < nd; ++j) out[(r0 + i) * p.cols + c0 + j] = z[j * kTile + i];
  });
}

void shuffled_logits(float* out, const ShuffledLogitsParams& p) {
  const int threads = resolve_threads(p.threads);
  RowScales q, s;
  normalize_rows_forward(q, p.query, p.batch, p.dim, p.normalize, threads);
  normalize_rows_forward(s, p.shuffled, p.batch * p.k, p.dim, p.normalize, threads);
  const double inv_tau = 1.0 / p.temperature;
  constexpr int64_t kRows = 64;
  parallel_for(threads, (p.batch + kRows - 1) / kRows, [&](int64_t item, int) {
    for (int64_t i = item * kRows; i < std::min(p.batch, (item + 1) * kRows); ++i)
      for (int64_t k = 0; k < p.k; ++k) {
        const int64_t row = i * p.k + k;
        out[row] = static_cast<float>(ms_logit(q.rows + i * p.dim, q.inv[i], s.rows + row * p.dim, s.inv[row],
                                               p.dim, inv_tau));
      }
  });
}

}  // namespace mbvr::cpu
