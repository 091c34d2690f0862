// Argument checks shared by the core's entry points (mbvr.cpp, evaluation.cpp). Each
// throws mbvr::Error with the wording of invalid_parameter, naming the argument.
#pragma once

#include <cstdint>
#include <string>

#include "mbvr.h"

namespace mbvr {

// As JavaScript prints numbers: the shortest text that reads back, NaN, Infinity.
std::string number(double v);

void require_input(const void* data, const char* name);        // TypeError when null
void require_positive_size(int64_t v, const char* name);      // RangeError when < 1
// a * b * c stays below 2^60 (element counts, then bytes, fit int64).
void require_size_product(int64_t a, int64_t b, int64_t c, const char* what);
// RangeError at the first NaN or infinity of x[0..n) (scanned on `threads` threads).
void require_finite(const float* x, int64_t n, const char* name, int threads);
// The largest Euclidean row norm of x (rows x dim), in double.
double max_row_norm(const float* x, int64_t rows, int64_t dim, int threads);

}  // namespace mbvr
