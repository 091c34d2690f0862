// top_k() and target_ranks() on the CPU: every query scored against every gallery row
// without ever holding the rows x cols score matrix.
//
// The scores come in tiles S[r0 : r0+132, c0 : c0+256] = Q^ G^T from the tile product
// (gemm.h: gemm_packed, with each gallery tile packed once by pack_b and shared by every
// query tile). The gallery is walked in blocks of a few tiles: each block's tiles are
// normalised and packed once (in parallel over tiles), then every query tile takes the
// block's tiles in increasing gallery order (in parallel over query tiles). So each
// query sees its scores in increasing gallery index, and one worker at a time owns a
// query tile's selections and counters: no locks, and a result that does not depend on
// the thread count (the tile grid is fixed by the sizes alone, and every score is the
// output of the same gemm_packed call whichever thread makes it).
//
// Order of candidates: score descending, then gallery index ascending. NaN scores (only
// without normalisation, from overflowing products) are treated as -inf.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <vector>

#include "evaluation.h"
#include "gemm.h"
#include "normalize.h"
#include "thread_pool.h"

namespace mbvr::cpu {
namespace {

// Tile shapes (fixed: part of which gemm call computes each score). A narrow gallery
// tile keeps the first pass of target_ranks cheap (one tile per target).
constexpr int64_t kQueryTile = 132;        // query rows per tile product (12, 6, 4 divide it)
constexpr int64_t kGalleryTile = 256;      // gallery rows per tile product
constexpr int64_t kBlockTiles = 32;        // gallery tiles packed per block (8192 rows)...
constexpr int64_t kBlockBytes = 64 << 20;  // ...unless that exceeds this

// A float buffer on a 64-byte boundary, so every tile buffer has the same alignment.
class AlignedFloats {
 public:
  void reset(int64_t n) {
    ptr_.reset(static_cast<float*>(::operator new[](static_cast<size_t>(n) * sizeof(float), std::align_val_t(64))));
  }
  float* data() const { return ptr_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<float, Free> ptr_;
};

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Floats of one packed gallery tile (B of the product), rounded up to 64 bytes.
int64_t packed_tile_floats(int64_t dim) { return round_up(packed_b_floats(dim, kGalleryTile), 16); }

// Per-worker scratch for pack_gallery_tile: normalised rows, then their transpose.
struct PackScratch {
  AlignedFloats rows, transposed;
  void reset(int64_t dim, bool normalize) {
    if (normalize) rows.reset(kGalleryTile * dim);
    transposed.reset(kGalleryTile * dim);
  }
};

// bt (k x n, row stride n) = transpose of x (n x k, row stride k).
void pack_transposed(float* bt, const float* x, int64_t n, int64_t k) {
  constexpr int64_t T = 16;  // transpose in small squares to stay cache friendly
  for (int64_t j0 = 0; j0 < n; j0 += T)
    for (int64_t p0 = 0; p0 < k; p0 += T)
      for (int64_t j = j0; j < j0 + T && j < n; ++j)
        for (int64_t p = p0; p < p0 + T && p < k; ++p) bt[p * n + j] = x[j * k + p];
}

// packed (pack_b layout) = G^T for the gallery rows c0 .. c0+nc-1, normalised as the
// queries are (normalize_row).
void pack_gallery_tile(float* packed, PackScratch& scratch, const float* gallery, int64_t c0, int64_t nc,
                       int64_t dim, bool normalize) {
  const float* rows = gallery + c0 * dim;
  if (normalize) {
    float* hat = scratch.rows.data();
    for (int64_t j = 0; j < nc; ++j) normalize_row(hat + j * dim, rows + j * dim, dim);
    rows = hat;
  }
  pack_transposed(scratch.transposed.data(), rows, nc, dim);  // D x nc
  pack_b(packed, scratch.transposed.data(), nc, dim, nc);
}

// tile (nr x nc, row stride nc) = scores of query rows r0.. against the packed tile.
// Both passes of target_ranks call this with identical arguments for a given tile,
// which is what makes a target's score bit-identical to the one it is compared with.
void score_tile(float* tile, const float* qhat, int64_t r0, int64_t nr, const float* packed, int64_t nc,
                int64_t dim) {
  gemm_packed(tile, nc, qhat + r0 * dim, dim, 1, packed, nr, nc, dim, false);
}

float canonical(float s) { return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s; }

struct Problem {
  const float* qhat;  // rows x D, normalised queries (or the caller's)
  const float* gallery;
  int64_t rows, cols, dim;
  bool normalize;
  int threads;
};

// Calls visit(tile, r0, nr, c0, nc, worker) for every pair (query tile, gallery tile);
// within one query tile the gallery tiles come in increasing order and from one thread
// at a time.
template <class Visit>
void stream_score_tiles(const Problem& p, Visit&& visit) {
  const int64_t gallery_tiles = (p.cols + kGalleryTile - 1) / kGalleryTile;
  const int64_t query_tiles = (p.rows + kQueryTile - 1) / kQueryTile;
  const int64_t tile_floats = packed_tile_floats(p.dim);
  const int64_t by_memory = std::max<int64_t>(1, kBlockBytes / (tile_floats * 4));
  const int64_t per_block =
      std::min({gallery_tiles, by_memory, std::max<int64_t>(kBlockTiles, 2 * static_cast<int64_t>(p.threads))});

  AlignedFloats block;
  block.reset(per_block * tile_floats);
  std::vector<PackScratch> scratch(p.threads);
  std::vector<AlignedFloats> tiles(p.threads);
  for (int w = 0; w < p.threads; ++w) {
    scratch[w].reset(p.dim, p.normalize);
    tiles[w].reset(kQueryTile * kGalleryTile);
  }

  for (int64_t b0 = 0; b0 < gallery_tiles; b0 += per_block) {
    const int64_t nb = std::min(per_block, gallery_tiles - b0);
    parallel_for(p.threads, nb, [&](int64_t item, int worker) {
      const int64_t c0 = (b0 + item) * kGalleryTile;
      pack_gallery_tile(block.data() + item * tile_floats, scratch[worker], p.gallery, c0,
                        std::min(kGalleryTile, p.cols - c0), p.dim, p.normalize);
    });
    parallel_for(p.threads, query_tiles, [&](int64_t qt, int worker) {
      const int64_t r0 = qt * kQueryTile, nr = std::min(kQueryTile, p.rows - r0);
      float* tile = tiles[worker].data();
      for (int64_t item = 0; item < nb; ++item) {
        const int64_t c0 = (b0 + item) * kGalleryTile, nc = std::min(kGalleryTile, p.cols - c0);
        score_tile(tile, p.qhat, r0, nr, block.data() + item * tile_floats, nc, p.dim);
        visit(tile, r0, nr, c0, nc, worker);
      }
    });
  }
}

// ---------------------------------------------------------------------------
// top_k: one selection per query, a binary min-heap of its k best candidates so far,
// kept in the query's own rows of the outputs; the root is the worst of them.

struct Selection {
  float* s;    // k scores
  int32_t* j;  // k gallery indices
  int64_t k;
  int64_t size = 0;

  // a is worse than b: lower score, or the same score and a higher index.
  bool worse(int64_t a, int64_t b) const { return s[a] < s[b] || (s[a] == s[b] && j[a] > j[b]); }
  void swap(int64_t a, int64_t b) {
    std::swap(s[a], s[b]);
    std::swap(j[a], j[b]);
  }
  void push(float score, int32_t index) {
    int64_t c = size++;
    s[c] = score;
    j[c] = index;
    while (c > 0) {
      const int64_t parent = (c - 1) / 2;
      if (!worse(c, parent)) break;
      swap(c, parent);
      c = parent;
    }
  }
  void replace_root(float score, int32_t index) {
    s[0] = score;
    j[0] = index;
    int64_t c = 0;
    for (;;) {
      const int64_t l = 2 * c + 1, r = l + 1;
      int64_t m = c;
      if (l < size && worse(l, m)) m = l;
      if (r < size && worse(r, m)) m = r;
      if (m == c) break;
      swap(c, m);
      c = m;
    }
  }

  // Offers scores z[0..n) of gallery rows c0.. . The stream reaches a query in
  // increasing gallery index, so once the heap is full a newcomer with a score equal to
  // the root's comes later than it and loses the tie: a strict > against the root's
  // score is the whole test.
  void offer(const float* z, int64_t n, int64_t c0) {
    int64_t t = 0;
    for (; t < n && size < k; ++t) push(canonical(z[t]), static_cast<int32_t>(c0 + t));
    if (t == n) return;
    float threshold = s[0];
    // Most scores lose: test 16 at a time with a branch-free (vectorised) any-of first.
    constexpr int64_t kChunk = 16;
    for (; t < n; t += kChunk) {
      const int64_t end = std::min(n, t + kChunk);
      bool any = false;
      for (int64_t u = t; u < end; ++u) any |= z[u] > threshold;
      if (!any) continue;
      for (int64_t u = t; u < end; ++u) {
        if (z[u] > threshold) {  // false for NaN
          replace_root(z[u], static_cast<int32_t>(c0 + u));
          threshold = s[0];
        }
      }
    }
  }

  // Best first: score descending, index ascending.
  void sort_best_first(std::vector<std::pair<float, int32_t>>& buf) {
    buf.resize(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i) buf[i] = {s[i], j[i]};
    std::sort(buf.begin(), buf.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    for (int64_t i = 0; i < size; ++i) {
      s[i] = buf[i].first;
      j[i] = buf[i].second;
    }
  }
};

}  // namespace

void top_k(int32_t* indices, float* scores, const TopKParams& p) {
  const int threads = resolve_threads(p.threads);
  NormalizedRows q;
  normalize_rows_forward(q, p.queries, p.rows, p.dim, p.normalize, threads);
  const Problem problem{q.hat, p.gallery, p.rows, p.cols, p.dim, p.normalize, threads};

  std::vector<Selection> sel;
  sel.reserve(static_cast<size_t>(p.rows));
  for (int64_t i = 0; i < p.rows; ++i) sel.push_back(Selection{scores + i * p.k, indices + i * p.k, p.k});

  stream_score_tiles(problem, [&](const float* tile, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int) {
    for (int64_t i = 0; i < nr; ++i) sel[r0 + i].offer(tile + i * nc, nc, c0);
  });

  constexpr int64_t kRowsPerItem = 256;
  parallel_for(threads, (p.rows + kRowsPerItem - 1) / kRowsPerItem, [&](int64_t item, int) {
    std::vector<std::pair<float, int32_t>> buf;
    for (int64_t i = item * kRowsPerItem; i < std::min(p.rows, (item + 1) * kRowsPerItem); ++i)
      sel[i].sort_best_first(buf);
  });
}

// ---------------------------------------------------------------------------
// target_ranks, in two passes over tiles of the same grid:
//   1. s_it for every query, read from the tile (query tile of i, gallery tile of t_i)
//      computed exactly as pass 2 will compute it (same score_tile call);
//   2. the stream: count, per query, the rows that beat the target:
//      j < t with s_ij >= s_it, and j > t with s_ij > s_it.

void target_ranks(int32_t* ranks, const RetrievalParams& p) {
  const int threads = resolve_threads(p.threads);
  NormalizedRows q;
  normalize_rows_forward(q, p.queries, p.rows, p.dim, p.normalize, threads);
  const Problem problem{q.hat, p.gallery, p.rows, p.cols, p.dim, p.normalize, threads};

  // Pass 1: per query tile, the distinct gallery tiles holding its targets.
  std::vector<float> target_score(static_cast<size_t>(p.rows));
  const int64_t query_tiles = (p.rows + kQueryTile - 1) / kQueryTile;
  {
    std::vector<AlignedFloats> packed(threads), tiles(threads);
    std::vector<PackScratch> scratch(threads);
    for (int w = 0; w < threads; ++w) {
      packed[w].reset(packed_tile_floats(p.dim));
      scratch[w].reset(p.dim, p.normalize);
      tiles[w].reset(kQueryTile * kGalleryTile);
    }
    parallel_for(threads, query_tiles, [&](int64_t qt, int worker) {
      const int64_t r0 = qt * kQueryTile, nr = std::min(kQueryTile, p.rows - r0);
      std::vector<int64_t> order(static_cast<size_t>(nr));  // queries of the tile, by target tile
      std::iota(order.begin(), order.end(), r0);
      std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return p.targets[a] / kGalleryTile < p.targets[b] / kGalleryTile;
      });
      for (size_t n = 0; n < order.size();) {
        const int64_t gt = p.targets[order[n]] / kGalleryTile;
        const int64_t c0 = gt * kGalleryTile, nc = std::min(kGalleryTile, p.cols - c0);
        pack_gallery_tile(packed[worker].data(), scratch[worker], p.gallery, c0, nc, p.dim, p.normalize);
        float* tile = tiles[worker].data();
        score_tile(tile, q.hat, r0, nr, packed[worker].data(), nc, p.dim);
        for (; n < order.size() && p.targets[order[n]] / kGalleryTile == gt; ++n) {
          const int64_t i = order[n];
          target_score[i] = canonical(tile[(i - r0) * nc + (p.targets[i] - c0)]);
        }
      }
    });
  }

  // Pass 2: the counts.
  std::vector<int64_t> beaten_by(static_cast<size_t>(p.rows), 0);
  stream_score_tiles(problem, [&](const float* tile, int64_t r0, int64_t nr, int64_t c0, int64_t nc, int) {
    for (int64_t i = r0; i < r0 + nr; ++i) {
      const float* z = tile + (i - r0) * nc;
      const float st = target_score[i];
      // Rows before the target win ties; the target itself does not count.
      const int64_t split = std::clamp<int64_t>(p.targets[i] - c0, 0, nc);
      const int64_t after = std::clamp<int64_t>(p.targets[i] + 1 - c0, 0, nc);
      int64_t count = 0;
      if (st == -std::numeric_limits<float>::infinity()) {
        // Only without normalisation: every score ties or beats -inf; NaN counts as -inf.
        count += split;
        for (int64_t j = after; j < nc; ++j) count += canonical(z[j]) > st;
      } else {
        for (int64_t j = 0; j < split; ++j) count += z[j] >= st;
        for (int64_t j = after; j < nc; ++j) count += z[j] > st;
      }
      beaten_by[i] += count;
    }
  });

  for (int64_t i = 0; i < p.rows; ++i) ranks[i] = static_cast<int32_t>(1 + beaten_by[i]);
}

}  // namespace mbvr::cpu
