// Dense products for the CPU backend: the only place the O(B^2 D) work happens.
//
// gemm: C (m x n, row stride ldc) = or += A (m x k) B (k x n), where
//   A(i, p) = a[i * a_rs + p * a_cs]   (any strides: A values are broadcast, one at a time)
//   B(p, j) = b[p * ldb + j]           (rows contiguous: B is read as vectors)
// A is read in place (its values are broadcast one at a time, any layout will do). B is
// copied, a k-chunk at a time, into panels of nr contiguous columns (nr: the
// microkernel's width) so the microkernel streams it from L1/L2 without cache-set
// conflicts. gemm_packed takes B already packed by pack_b, for a B that several calls
// share (the queries of a strip), so it is packed once.
//
// Determinism: every C element is one chain of FMAs over p = 0, 1, ..., k-1 (C may be
// stored and reloaded between k-chunks, which is exact), whatever m, n or the block a
// caller hands to a thread. Splitting C between threads therefore never changes a bit.
#pragma once

#include <cstdint>

namespace mbvr::cpu {

void gemm(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
          int64_t ldb, int64_t m, int64_t n, int64_t k, bool accumulate);

// Packed B: ceil(n / nr) panels, each k x nr floats (row stride nr), zero padded.
// pack_b: B(p, j) = b[p * ldb + j] (* row_scale[p]); pack_bt: B(p, j) = bt[j * ldbt + p]
// (* col_scale[j]), i.e. from B's transpose. A scale is one float product per element.
int64_t packed_b_floats(int64_t k, int64_t n);
void pack_b(float* packed, const float* b, int64_t ldb, int64_t k, int64_t n,
            const float* row_scale = nullptr);
void pack_bt(float* packed, const float* bt, int64_t ldbt, int64_t k, int64_t n,
             const float* col_scale = nullptr);
void gemm_packed(float* c, int64_t ldc, const float* a, int64_t a_rs, int64_t a_cs,
                 const float* packed_b, int64_t m, int64_t n, int64_t k, bool accumulate);

// Which microkernel gemm uses on this machine ("avx512 12x32", ...), for benchmarks.
const char* gemm_kernel_name();

}  // namespace mbvr::cpu
