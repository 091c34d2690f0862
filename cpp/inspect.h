// The facts about an input's values that the TypeScript layer checks (src/validate.ts):
// whether every value is finite, and the row norms and shapes that decide whether the
// logits and gradients are representable (docs/math.md §4) and the bf16 rule's row
// shapes (§5). One pass over the memory, in parallel, off the JavaScript engine's loops.
#pragma once

#include <cstdint>

namespace mbvr {

struct RowFacts {
  int64_t first_nonfinite = -1;  // index of the first NaN or infinity, or -1
  double nonfinite_value = 0;    // its value
  double max_norm = 0;           // the largest Euclidean row norm
  double min_norm = 0;           // the smallest (0 for a zero row; 0 when rows = 0)
  double max_fourth = 0;         // the largest sum x^4 / (sum x^2)^2 of a nonzero row
};

// x: rows x dim floats. Norms are computed in double and are meaningful only when every
// value is finite.
RowFacts inspect_rows(const float* x, int64_t rows, int64_t dim, int threads);

}  // namespace mbvr
