#include "validation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "cpu/thread_pool.h"

namespace mbvr {

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  for (int digits = 1;; ++digits) {  // the shortest text that reads back as v
    std::ostringstream s;
    s.precision(digits);
    s << v;
    if (digits >= 17 || std::stod(s.str()) == v) return s.str();
  }
}

void require_input(const void* data, const char* name) {
  if (!data) throw invalid_parameter(ErrorKind::Type, name, "a Float32Array", "nothing");
}

void require_positive_size(int64_t v, const char* name) {
  if (v < 1) throw invalid_parameter(ErrorKind::Range, name, "an integer >= 1", std::to_string(v));
}

void require_size_product(int64_t a, int64_t b, int64_t c, const char* what) {
  const double elements = static_cast<double>(a) * static_cast<double>(b) * static_cast<double>(c);
  if (elements > static_cast<double>(std::numeric_limits<int64_t>::max() / 8))
    throw invalid_parameter(ErrorKind::Range, what, "an element count below 2^60",
                            number(elements));
}

void require_finite(const float* x, int64_t n, const char* name, int threads) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> first_bad(chunks, -1);
  cpu::parallel_for(threads, chunks, [&](int64_t c, int) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    bool bad = false;
    for (int64_t i = c * kChunk; i < end; ++i) bad |= !std::isfinite(x[i]);
    if (!bad) return;
    for (int64_t i = c * kChunk; i < end; ++i)
      if (!std::isfinite(x[i])) {
        first_bad[c] = i;
        return;
      }
  });
  for (int64_t c = 0; c < chunks; ++c)
    if (first_bad[c] >= 0) {
      const int64_t i = first_bad[c];
      throw invalid_parameter(ErrorKind::Range, name, "finite numbers",
                              number(x[i]) + " at index " + std::to_string(i));
    }
}

double max_row_norm(const float* x, int64_t rows, int64_t dim, int threads) {
  constexpr int64_t kRows = 256;
  const int64_t chunks = (rows + kRows - 1) / kRows;
  std::vector<double> largest(chunks, 0.0);
  cpu::parallel_for(threads, chunks, [&](int64_t c, int) {
    for (int64_t i = c * kRows; i < std::min(rows, (c + 1) * kRows); ++i) {
      double ss = 0;
      for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(x[i * dim + d]) * x[i * dim + d];
      largest[c] = std::max(largest[c], ss);
    }
  });
  return std::sqrt(*std::max_element(largest.begin(), largest.end()));
}

}  // namespace mbvr
