// bfloat16 products for the CPU backend: the same C = A B as gemm.h with A and B rounded
// to bf16 (8-bit mantissa) and every product accumulated in fp32. A product of two bf16
// values is exact in fp32, so the only rounding beyond the inputs' is the fp32 sum,
// and CPUs with AVX512-BF16 (vdpbf16ps: two products per 32-bit lane) run it at twice
// the rate of the fp32 kernel.
//
// Layouts:
//   A: m x k bf16, row-major, k contiguous (A(i, p) = a[i * lda + p]), so a k-pair of a
//      row is one 32-bit load, broadcast as is. No alignment is needed, but a row stride
//      of a multiple of 4 KiB (lda = 2048, 4096, ...) puts the 12 rows a tile reads in
//      one L1 set: pad it (lda = k + 32 measured 6% faster at k = 4096).
//   B: packed once by pack_b_bf16 / pack_bt_bf16 into ceil(n / kBf16Nr) panels; within
//      a panel, k-pair t (rows 2t, 2t + 1) holds, for each of the kBf16Nr columns j,
//      the two values B(2t, j), B(2t + 1, j) side by side: the vdpbf16ps operand layout.
//      A missing row 2t + 1 (odd k) and missing columns are zero.
//
// Determinism: every C element is one chain of operations over the k-pairs t = 0, 1, ...
// (C may be stored and reloaded between k-chunks, which is exact), whatever m, n or the
// block of C a caller hands to a thread, so splitting C between threads never changes a
// bit. The AVX512-BF16 and portable kernels compute the same products in the same order
// but are not promised to agree bit for bit (vdpbf16ps flushes denormals, and how it
// rounds within a pair is the CPU's; on Zen 4 they were measured to agree).
#pragma once

#include <cstdint>

namespace mbvr::cpu {

using bf16 = uint16_t;  // raw bfloat16 bits

// Round to nearest even; NaN stays (a quiet) NaN, inf stays inf, and a finite value
// beyond the largest bf16 saturates to it.
bf16 to_bf16(float x);
float from_bf16(bf16 x);

// dst(r, c) = bf16(src[r * ld_src + c] * (scale ? scale[r] : 1)) for r < rows, c < cols.
// When cols is odd and ld_dst > cols, dst[r * ld_dst + cols] = 0 (the pad of the last pair).
void convert_rows_bf16(bf16* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                       int64_t cols, const float* scale);
// Transposed: dst(c, r) = bf16(src[r * ld_src + c] * (scale ? scale[r] : 1)); dst is
// cols x rows, row stride ld_dst. When rows is odd and ld_dst > rows, dst[c * ld_dst + rows] = 0.
void convert_transposed_bf16(bf16* dst, int64_t ld_dst, const float* src, int64_t ld_src,
                             int64_t rows, int64_t cols, const float* scale);

// Columns per packed panel (the AVX512-BF16 kernel's width; the layout is the same
// whichever kernel runs).
constexpr int kBf16Nr = 32;

int64_t packed_b_bf16_elems(int64_t k, int64_t n);  // bf16 elements of a packed k x n B
// Panel j / kBf16Nr of a packed B starts packed_b_bf16_elems(k, j) elements in (j a
// multiple of kBf16Nr), so callers may split C by columns at panel boundaries.
void pack_b_bf16(bf16* packed, const float* b, int64_t ldb, int64_t k, int64_t n);     // B(p, j) = b[p * ldb + j]
// The same for rows p0 <= p < p1 of B only (p0 even), into the whole-B layout: callers
// may split the packing by rows (each pair of rows lands in every panel).
void pack_b_bf16_rows(bf16* packed, const float* b, int64_t ldb, int64_t k, int64_t n, int64_t p0,
                      int64_t p1);
void pack_bt_bf16(bf16* packed, const float* bt, int64_t ldbt, int64_t k, int64_t n);  // B(p, j) = bt[j * ldbt + p]

// C (m x n fp32, row stride ldc) = or += A B, A and packed B as above. Reads A(i, p) for
// p < k only (never a pad element), any alignment.
void gemm_bf16_packed(float* c, int64_t ldc, const bf16* a, int64_t lda, const bf16* packed_b,
                      int64_t m, int64_t n, int64_t k, bool accumulate);

bool bf16_kernel_native();  // true when the AVX512-BF16 kernel is in use
const char* gemm_bf16_kernel_name();

}  // namespace mbvr::cpu
