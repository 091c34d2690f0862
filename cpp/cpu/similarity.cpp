// similarity() and shuffled_logits() on the CPU: the logits of SPEC section 2 on their
// own, computed exactly as the loss computes them (same normalisation, same tile
// product), so what a user inspects is what the loss saw.
#include <algorithm>

#include "cpu_backend.h"
#include "normalize.h"
#include "thread_pool.h"
#include "tile_gemm.h"

namespace mbvr::cpu {

void similarity(float* out, const SimilarityParams& p) {
  const int threads = resolve_threads(p.threads);
  NormalizedRows a, b;
  normalize_rows_forward(a, p.a, p.rows, p.dim, p.normalize, threads);
  normalize_rows_forward(b, p.b, p.cols, p.dim, p.normalize, threads);
  constexpr int64_t kTile = 128;
  const int64_t row_tiles = (p.rows + kTile - 1) / kTile;
  const int64_t col_tiles = (p.cols + kTile - 1) / kTile;
  std::vector<std::vector<float>> packed(threads, std::vector<float>(p.dim * kTile));
  std::vector<std::vector<float>> tile(threads, std::vector<float>(kTile * kTile));
  const float inv_tau = static_cast<float>(1.0 / p.temperature);
  parallel_for(threads, row_tiles * col_tiles, [&](int64_t item, int worker) {
    const int64_t r0 = item / col_tiles * kTile, c0 = item % col_tiles * kTile;
    const int64_t nr = std::min(kTile, p.rows - r0), nc = std::min(kTile, p.cols - c0);
    float* z = tile[worker].data();
    pack_transposed(packed[worker].data(), b.hat + c0 * p.dim, nc, p.dim);
    std::fill(z, z + nr * nc, 0.0f);
    gemm_acc(z, nc, a.hat + r0 * p.dim, p.dim, 1, packed[worker].data(), nc, nr, nc, p.dim);
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = 0; j < nc; ++j) out[(r0 + i) * p.cols + c0 + j] = z[i * nc + j] * inv_tau;
  });
}

void shuffled_logits(float* out, const ShuffledLogitsParams& p) {
  const int threads = resolve_threads(p.threads);
  NormalizedRows q, s;
  normalize_rows_forward(q, p.query, p.batch, p.dim, p.normalize, threads);
  normalize_rows_forward(s, p.shuffled, p.batch * p.k, p.dim, p.normalize, threads);
  const double inv_tau = 1.0 / p.temperature;
  constexpr int64_t kRows = 64;
  parallel_for(threads, (p.batch + kRows - 1) / kRows, [&](int64_t item, int) {
    for (int64_t i = item * kRows; i < std::min(p.batch, (item + 1) * kRows); ++i)
      for (int64_t k = 0; k < p.k; ++k) {
        const float* qi = q.hat + i * p.dim;
        const float* sk = s.hat + (i * p.k + k) * p.dim;
        double dot = 0;  // as the loss's MS term does
        for (int64_t d = 0; d < p.dim; ++d) dot += static_cast<double>(qi[d]) * sk[d];
        out[i * p.k + k] = static_cast<float>(dot * inv_tau);
      }
  });
}

}  // namespace mbvr::cpu
