#include "validation.h"

#include <limits>

namespace mbvr {

void require_input(const void* data, const char* name) {
  if (!data) throw bad_argument(ErrorKind::Type, name, "missing");
}

void require_positive_size(int64_t v, const char* name) {
  if (v < 1) throw bad_argument(ErrorKind::Range, name, "must be >= 1, got " + std::to_string(v));
}

void require_size_product(int64_t a, int64_t b, int64_t c, const char* what) {
  const double elements = static_cast<double>(a) * static_cast<double>(b) * static_cast<double>(c);
  if (elements > static_cast<double>(std::numeric_limits<int64_t>::max() / 8))
    throw bad_argument(ErrorKind::Range, what, "too many elements (2^60 at most)");
}

}  // namespace mbvr
