// The memory-safety checks of the core's entry points (mbvr.cpp, evaluation.cpp): sizes
// that are positive and whose products fit, pointers that are present. Terse messages
// (mbvr::bad_argument): user-facing validation, with its wording, is the TypeScript
// layer's (src/validate.ts); these only guarantee that a direct call cannot read or write
// out of bounds.
#pragma once

#include <cstdint>
#include <string>

#include "mbvr.h"

namespace mbvr {

void require_input(const void* data, const char* name);    // TypeError when null
void require_positive_size(int64_t v, const char* name);  // RangeError when < 1
// a * b * c stays below 2^60 (element counts, then bytes, fit int64).
void require_size_product(int64_t a, int64_t b, int64_t c, const char* what);

}  // namespace mbvr
