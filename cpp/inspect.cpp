#include "inspect.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/thread_pool.h"

namespace mbvr {

RowFacts inspect_rows(const float* x, int64_t rows, int64_t dim, int threads) {
  RowFacts facts;
  if (rows <= 0 || dim <= 0) return facts;
  // Whole rows per item, about 64k values each: items in index order give the first bad
  // index, and max/min do not depend on the order.
  const int64_t rows_per_item = std::max<int64_t>(1, (int64_t{1} << 16) / dim);
  const int64_t items = (rows + rows_per_item - 1) / rows_per_item;
  std::vector<RowFacts> part(static_cast<size_t>(items));
  cpu::parallel_for(threads, items, [&](int64_t item, int) {
    RowFacts f;
    f.min_norm = INFINITY;
    const int64_t end = std::min(rows, (item + 1) * rows_per_item);
    for (int64_t i = item * rows_per_item; i < end; ++i) {
      const float* xi = x + i * dim;
      double s2 = 0, s4 = 0;
      for (int64_t d = 0; d < dim; ++d) {
        const double v = static_cast<double>(xi[d]) * xi[d];
        s2 += v;
        s4 += v * v;
      }
      if (!std::isfinite(s2) && f.first_nonfinite < 0) {
        // (s2 of finite floats cannot overflow a double: a NaN or an infinity is here.)
        for (int64_t d = 0; d < dim; ++d)
          if (!std::isfinite(xi[d])) {
            f.first_nonfinite = i * dim + d;
            f.nonfinite_value = xi[d];
            break;
          }
      }
      const double norm = std::sqrt(s2);
      f.max_norm = std::max(f.max_norm, norm);
      f.min_norm = std::min(f.min_norm, norm);
      if (s2 > 0) f.max_fourth = std::max(f.max_fourth, s4 / (s2 * s2));
    }
    part[item] = f;
  });
  facts.min_norm = INFINITY;
  for (const RowFacts& f : part) {
    if (facts.first_nonfinite < 0 && f.first_nonfinite >= 0) {
      facts.first_nonfinite = f.first_nonfinite;
      facts.nonfinite_value = f.nonfinite_value;
    }
    facts.max_norm = std::max(facts.max_norm, f.max_norm);
    facts.min_norm = std::min(facts.min_norm, f.min_norm);
    facts.max_fourth = std::max(facts.max_fourth, f.max_fourth);
  }
  return facts;
}

}  // namespace mbvr
