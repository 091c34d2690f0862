// Tile products of the CUDA backend: the only place the O(B^2 D) work happens (the GPU
// counterpart of cpu/gemm.h). Each CTA of 256 threads works on one 128 x 128 tile:
//
//   nt:  S (128 x 128, fp32, in shared memory)  = Own (128 x Dp) * Walk (128 x Dp)^T
//   nn:  Grad (128 x Dp, fp32, global)         += G (128 x 128, shared) * Walk (128 x Dp)
//
// Own, Walk and Grad are row blocks of padded device matrices (pitch Dp, see common.cuh),
// so every load is in bounds. The same two products serve every kernel: logits
// S = Q^ X^T, row gradients dQ^ += G X^, and column gradients dX^ += G^T Q^, the last
// computed as the row gradient of the transposed problem (own = X^, walk = Q^).
//
// Three engines, one per precision, with the same interface:
//   FfmaEngine    fp32: plain FMA on CUDA cores, 8 x 8 outputs per thread.
//   WmmaEngine    tf32 (m16n16k8) and bf16 (m16n16k16) tensor cores through nvcuda::wmma,
//                 fp32 accumulation; tf32 operands are rounded (cvt.rna) after each
//                 fragment load, bf16 operands are bf16 copies made once per call.
//                 Tf32SplitEngine: the logit product nt() in 3xTF32 (hi/lo halves, three
//                 products), for small temperatures; nn() stays plain tf32.
// The accumulation order over the depth is fixed (chunk by chunk, in order), so the
// same inputs give the same bits whatever the grid.
//
// kStages = 2: operands double-buffered with cp.async (about 145 KB of shared memory,
// one CTA per SM); kStages = 1: single buffer, about 108 KB, two CTAs per SM on sm_90.
// Kernel versions 1 and 2 of softmax_tiles.cu are these two choices.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include <type_traits>

#include "common.cuh"

namespace mbvr::cuda {

constexpr int kLdS = kBlockRows + 4;  // row stride of the S tile (floats)
constexpr size_t kSBytes = sizeof(float) * kBlockRows * kLdS;

constexpr size_t cmax(size_t a, size_t b) { return a > b ? a : b; }

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Copies ROWS rows of COLS elements (row stride `pitch` in global memory, LD in shared
// memory) with 16-byte cp.async, all threads of the CTA taking part.
template <class T, int ROWS, int COLS, int LD>
__device__ __forceinline__ void stage_rows(T* dst, const T* src, int64_t pitch) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kPerRow = COLS / kVec;
  constexpr int kTotal = ROWS * kPerRow;
  static_assert(COLS % kVec == 0 && kTotal % kTileThreads == 0, "stage shape");
#pragma unroll
  for (int n = 0; n < kTotal / kTileThreads; ++n) {
    const int idx = threadIdx.x + n * kTileThreads;
    const int r = idx / kPerRow, c = idx % kPerRow * kVec;
    cp_async16(dst + r * LD + c, src + static_cast<int64_t>(r) * pitch + c);
  }
}

// ---------------------------------------------------------------------------
// Tensor cores: tf32 or bf16.

namespace wmma = nvcuda::wmma;

template <class In, class FragT, int WK, int kStages, bool kSplit = false>
struct WmmaEngine {
  using InT = In;
  static constexpr int kMinBlocks = kStages == 1 ? 2 : 1;  // CTAs per SM to aim for
  static constexpr bool kAccurateExp = false;                // __expf in the softmax
  static constexpr bool kTf32 = std::is_same<FragT, wmma::precision::tf32>::value;
  using G = In;  // element type of the coefficient tile fed to nn()
  static constexpr int kVec = 16 / sizeof(In);
  static constexpr int BK = 128 / sizeof(In);  // depth chunk: 128 bytes per row
  static constexpr int LDK = BK + kVec;        // +16 bytes against bank conflicts
  static constexpr int kDC = 64;               // output columns per nn() chunk
  static constexpr int LDN = kDC + kVec;
  // G lives in the S region: fp32 in place for tf32, bf16 with its own stride for bf16.
  static constexpr int LDG = kTf32 ? kLdS : kBlockRows + 8;
  static constexpr size_t kNtStage = size_t(kStages) * 2 * kBlockRows * LDK * sizeof(In);
  static constexpr size_t kNnStage = size_t(kStages) * kBlockRows * LDN * sizeof(In);
  static constexpr size_t kStageBytes = cmax(kNtStage, kNnStage);
  // Full unrolling of a depth chunk needs about 240 registers: only with one CTA per SM.
  static constexpr int kUnrollK = kStages == 2 && !kSplit ? BK / WK : 1;
  static_assert(!kSplit || std::is_same<FragT, wmma::precision::tf32>::value, "split is for tf32");
  static_assert(sizeof(G) * kBlockRows * LDG <= kSBytes, "G must fit in the S region");

  using FragAcc = wmma::fragment<wmma::accumulator, 16, 16, WK, float>;
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, WK, FragT, wmma::row_major>;
  using FragBc = wmma::fragment<wmma::matrix_b, 16, 16, WK, FragT, wmma::col_major>;
  using FragBr = wmma::fragment<wmma::matrix_b, 16, 16, WK, FragT, wmma::row_major>;

  template <class Frag>
  __device__ static __forceinline__ void round(Frag& f) {
    if constexpr (kTf32) {
#pragma unroll
      for (int i = 0; i < f.num_elements; ++i) f.x[i] = wmma::__float_to_tf32(f.x[i]);
    }
  }

  // 3xTF32: x = hi + lo with hi = tf32(x), lo = tf32(x - hi); a.b ~ hi.hi + hi.lo + lo.hi
  // keeps about 21 bits of each operand (the logits of small temperatures need them).
  template <class Frag>
  __device__ static __forceinline__ void split(Frag& hi, Frag& lo) {
#pragma unroll
    for (int i = 0; i < hi.num_elements; ++i) {
      const float x = hi.x[i];
      const float h = wmma::__float_to_tf32(x);
      hi.x[i] = h;
      lo.x[i] = wmma::__float_to_tf32(x - h);
    }
  }

  __device__ static G* g_tile(float* S, unsigned char*) { return reinterpret_cast<G*>(S); }
  __device__ static G to_g(float g) {
    if constexpr (kTf32) return g;
    else return __float2bfloat16_rn(g);
  }

  // S = own (128 x depth) * walk (128 x depth)^T. Warps 2 x 4, 64 x 32 outputs each.
  __device__ static void nt(float* S, const In* own, const In* walk, int64_t pitch, int64_t depth,
                            unsigned char* stage) {
    In* st = reinterpret_cast<In*>(stage);
    const int warp = threadIdx.x / 32, wr = warp / 4, wc = warp % 4;
    FragAcc acc[4][2];
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
      for (int b = 0; b < 2; ++b) wmma::fill_fragment(acc[a][b], 0.0f);

    const int64_t chunks = depth / BK;
    auto As = [&](int buf) { return st + (buf * 2) * kBlockRows * LDK; };
    auto Bs = [&](int buf) { return st + (buf * 2 + 1) * kBlockRows * LDK; };
    auto issue = [&](int64_t c, int buf) {
      stage_rows<In, kBlockRows, BK, LDK>(As(buf), own + c * BK, pitch);
      stage_rows<In, kBlockRows, BK, LDK>(Bs(buf), walk + c * BK, pitch);
      cp_async_commit();
    };
    if constexpr (kStages == 2) issue(0, 0);
    for (int64_t c = 0; c < chunks; ++c) {
      int buf = 0;
      if constexpr (kStages == 2) {
        buf = static_cast<int>(c & 1);
        if (c + 1 < chunks) {
          issue(c + 1, buf ^ 1);
          cp_async_wait<1>();
        } else {
          cp_async_wait<0>();
        }
      } else {
        issue(c, 0);
        cp_async_wait<0>();
      }
      __syncthreads();
      const In* a_s = As(buf);
      const In* b_s = Bs(buf);
#pragma unroll(kUnrollK)
      for (int kk = 0; kk < BK; kk += WK) {
        FragA fa[4];
        FragBc fb[2];
        if constexpr (kSplit) {
          FragA fa_lo[4];
          FragBc fb_lo[2];
#pragma unroll
          for (int a = 0; a < 4; ++a) {
            wmma::load_matrix_sync(fa[a], a_s + (wr * 64 + a * 16) * LDK + kk, LDK);
            split(fa[a], fa_lo[a]);
          }
#pragma unroll
          for (int b = 0; b < 2; ++b) {
            wmma::load_matrix_sync(fb[b], b_s + (wc * 32 + b * 16) * LDK + kk, LDK);
            split(fb[b], fb_lo[b]);
          }
#pragma unroll
          for (int a = 0; a < 4; ++a)
#pragma unroll
            for (int b = 0; b < 2; ++b) {  // small terms first
              wmma::mma_sync(acc[a][b], fa_lo[a], fb[b], acc[a][b]);
              wmma::mma_sync(acc[a][b], fa[a], fb_lo[b], acc[a][b]);
              wmma::mma_sync(acc[a][b], fa[a], fb[b], acc[a][b]);
            }
        } else {
#pragma unroll
          for (int a = 0; a < 4; ++a) {
            wmma::load_matrix_sync(fa[a], a_s + (wr * 64 + a * 16) * LDK + kk, LDK);
            round(fa[a]);
          }
#pragma unroll
          for (int b = 0; b < 2; ++b) {
            wmma::load_matrix_sync(fb[b], b_s + (wc * 32 + b * 16) * LDK + kk, LDK);
            round(fb[b]);
          }
#pragma unroll
          for (int a = 0; a < 4; ++a)
#pragma unroll
            for (int b = 0; b < 2; ++b) wmma::mma_sync(acc[a][b], fa[a], fb[b], acc[a][b]);
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
      for (int b = 0; b < 2; ++b)
        wmma::store_matrix_sync(S + (wr * 64 + a * 16) * kLdS + wc * 32 + b * 16, acc[a][b], kLdS,
                                wmma::mem_row_major);
  }

  // grad (128 x depth, global, pitch) += g (128 x 128, shared, LDG) * walk (128 x depth).
  // Warps 4 x 2, 32 x 32 outputs each per 64-column chunk; the accumulators are read
  // from and written back to global memory (this CTA owns those rows).
  __device__ static void nn(float* grad, int64_t pitch, int64_t depth, const G* g, const In* walk,
                            unsigned char* stage) {
    In* st = reinterpret_cast<In*>(stage);
    const int warp = threadIdx.x / 32, wr = warp / 2, wc = warp % 2;
    const int64_t chunks = depth / kDC;
    auto Bn = [&](int buf) { return st + buf * kBlockRows * LDN; };
    auto issue = [&](int64_t c, int buf) {
      stage_rows<In, kBlockRows, kDC, LDN>(Bn(buf), walk + c * kDC, pitch);
      cp_async_commit();
    };
    if constexpr (kStages == 2) issue(0, 0);
    for (int64_t c = 0; c < chunks; ++c) {
      int buf = 0;
      if constexpr (kStages == 2) {
        buf = static_cast<int>(c & 1);
        if (c + 1 < chunks) {
          issue(c + 1, buf ^ 1);
          cp_async_wait<1>();
        } else {
          cp_async_wait<0>();
        }
      } else {
        issue(c, 0);
        cp_async_wait<0>();
      }
      __syncthreads();
      float* out = grad + c * kDC;
      FragAcc acc[2][2];
#pragma unroll
      for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int b = 0; b < 2; ++b)
          wmma::load_matrix_sync(acc[a][b], out + static_cast<int64_t>(wr * 32 + a * 16) * pitch + wc * 32 + b * 16,
                                 static_cast<unsigned>(pitch), wmma::mem_row_major);
      const In* b_s = Bn(buf);
#pragma unroll(kUnrollK)
      for (int kk = 0; kk < kBlockRows; kk += WK) {
        FragA fa[2];
        FragBr fb[2];
#pragma unroll
        for (int a = 0; a < 2; ++a) {
          wmma::load_matrix_sync(fa[a], g + (wr * 32 + a * 16) * LDG + kk, LDG);
          round(fa[a]);
        }
#pragma unroll
        for (int b = 0; b < 2; ++b) {
          wmma::load_matrix_sync(fb[b], b_s + kk * LDN + wc * 32 + b * 16, LDN);
          round(fb[b]);
        }
#pragma unroll
        for (int a = 0; a < 2; ++a)
#pragma unroll
          for (int b = 0; b < 2; ++b) wmma::mma_sync(acc[a][b], fa[a], fb[b], acc[a][b]);
      }
#pragma unroll
      for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int b = 0; b < 2; ++b)
          wmma::store_matrix_sync(out + static_cast<int64_t>(wr * 32 + a * 16) * pitch + wc * 32 + b * 16,
                                  acc[a][b], static_cast<unsigned>(pitch), wmma::mem_row_major);
      __syncthreads();
    }
  }
};

template <int kStages>
using Tf32Engine = WmmaEngine<float, wmma::precision::tf32, 8, kStages>;
template <int kStages>
using Tf32SplitEngine = WmmaEngine<float, wmma::precision::tf32, 8, kStages, true>;
template <int kStages>
using Bf16Engine = WmmaEngine<__nv_bfloat16, __nv_bfloat16, 16, kStages>;

// ---------------------------------------------------------------------------
// CUDA cores: fp32.

template <int kStages>
struct FfmaEngine {
  using InT = float;
  using G = float;
  static constexpr int kMinBlocks = kStages == 1 ? 2 : 1;
  static constexpr bool kAccurateExp = true;  // expf: the fp32 path aims at 1e-5
  static constexpr int BK = 16;                  // depth chunk
  static constexpr int LDT = kBlockRows + 4;     // transposed stage: [k][row]
  static constexpr int kDC = 64;
  static constexpr int LDN = kDC + 4;
  static constexpr int LDG = kLdS;
  static constexpr size_t kNtStage = size_t(kStages) * 2 * BK * LDT * sizeof(float);
  static constexpr size_t kNnStage = size_t(kStages) * kBlockRows * LDN * sizeof(float);
  static constexpr size_t kStageBytes = cmax(kNtStage, kNnStage);

  __device__ static G* g_tile(float* S, unsigned char*) { return S; }
  __device__ static G to_g(float g) { return g; }

  // Thread (tx, ty) of 16 x 16 computes rows {ty*4 + i, 64 + ty*4 + i} x cols
  // {tx*4 + j, 64 + tx*4 + j}; operands are staged transposed so that each k step is
  // four float4 loads for 64 FMAs.
  __device__ static void nt(float* S, const float* own, const float* walk, int64_t pitch,
                            int64_t depth, unsigned char* stage) {
    float* st = reinterpret_cast<float*>(stage);
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    auto At = [&](int buf) { return st + (buf * 2) * BK * LDT; };
    auto Bt = [&](int buf) { return st + (buf * 2 + 1) * BK * LDT; };
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

    // Loads: element idx = tid + 256 p (p < 2) is row idx / 4, columns (idx % 4) * 4 + 0..3.
    float4 ra[2], rb[2];
    auto load = [&](int64_t c) {
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const int idx = tid + p * kTileThreads, row = idx / 4, k4 = idx % 4;
        const int64_t off = static_cast<int64_t>(row) * pitch + c * BK + k4 * 4;
        ra[p] = *reinterpret_cast<const float4*>(own + off);
        rb[p] = *reinterpret_cast<const float4*>(walk + off);
      }
    };
    auto store = [&](int buf) {
      float* a = At(buf);
      float* b = Bt(buf);
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const int idx = tid + p * kTileThreads, row = idx / 4, k = (idx % 4) * 4;
        a[(k + 0) * LDT + row] = ra[p].x;
        a[(k + 1) * LDT + row] = ra[p].y;
        a[(k + 2) * LDT + row] = ra[p].z;
        a[(k + 3) * LDT + row] = ra[p].w;
        b[(k + 0) * LDT + row] = rb[p].x;
        b[(k + 1) * LDT + row] = rb[p].y;
        b[(k + 2) * LDT + row] = rb[p].z;
        b[(k + 3) * LDT + row] = rb[p].w;
      }
    };

    const int64_t chunks = depth / BK;
    if constexpr (kStages == 2) {
      load(0);
      store(0);
      __syncthreads();
    }
    for (int64_t c = 0; c < chunks; ++c) {
      int buf = 0;
      if constexpr (kStages == 2) {
        buf = static_cast<int>(c & 1);
        if (c + 1 < chunks) load(c + 1);
      } else {
        load(c);
        store(0);
        __syncthreads();
      }
      const float* a_s = At(buf);
      const float* b_s = Bt(buf);
#pragma unroll
      for (int k = 0; k < BK; ++k) {
        const float4 a0 = *reinterpret_cast<const float4*>(a_s + k * LDT + ty * 4);
        const float4 a1 = *reinterpret_cast<const float4*>(a_s + k * LDT + 64 + ty * 4);
        const float4 b0 = *reinterpret_cast<const float4*>(b_s + k * LDT + tx * 4);
        const float4 b1 = *reinterpret_cast<const float4*>(b_s + k * LDT + 64 + tx * 4);
        const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      if constexpr (kStages == 2) {
        if (c + 1 < chunks) store(buf ^ 1);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int row = (i < 4 ? 0 : 64) + ty * 4 + (i & 3);
      *reinterpret_cast<float4*>(S + row * kLdS + tx * 4) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      *reinterpret_cast<float4*>(S + row * kLdS + 64 + tx * 4) =
          make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
    }
  }

  // Thread (tx, ty) of 8 x 32 updates rows ty + 32 r (r < 4) x cols {tx*4 + j, 32 + tx*4 + j}
  // of each 64-column chunk, reading and writing its accumulators in global memory.
  __device__ static void nn(float* grad, int64_t pitch, int64_t depth, const float* g,
                            const float* walk, unsigned char* stage) {
    float* st = reinterpret_cast<float*>(stage);
    const int tid = threadIdx.x, tx = tid % 8, ty = tid / 8;
    const int64_t chunks = depth / kDC;
    auto Bn = [&](int buf) { return st + buf * kBlockRows * LDN; };
    auto issue = [&](int64_t c, int buf) {
      stage_rows<float, kBlockRows, kDC, LDN>(Bn(buf), walk + c * kDC, pitch);
      cp_async_commit();
    };
    if constexpr (kStages == 2) issue(0, 0);
    for (int64_t c = 0; c < chunks; ++c) {
      int buf = 0;
      if constexpr (kStages == 2) {
        buf = static_cast<int>(c & 1);
        if (c + 1 < chunks) {
          issue(c + 1, buf ^ 1);
          cp_async_wait<1>();
        } else {
          cp_async_wait<0>();
        }
      } else {
        issue(c, 0);
        cp_async_wait<0>();
      }
      __syncthreads();
      float* out = grad + c * kDC;
      float acc[4][8];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float* o = out + static_cast<int64_t>(ty + 32 * r) * pitch;
        const float4 v0 = *reinterpret_cast<const float4*>(o + tx * 4);
        const float4 v1 = *reinterpret_cast<const float4*>(o + 32 + tx * 4);
        acc[r][0] = v0.x, acc[r][1] = v0.y, acc[r][2] = v0.z, acc[r][3] = v0.w;
        acc[r][4] = v1.x, acc[r][5] = v1.y, acc[r][6] = v1.z, acc[r][7] = v1.w;
      }
      const float* b_s = Bn(buf);
#pragma unroll 4
      for (int j = 0; j < kBlockRows; ++j) {
        const float4 b0 = *reinterpret_cast<const float4*>(b_s + j * LDN + tx * 4);
        const float4 b1 = *reinterpret_cast<const float4*>(b_s + j * LDN + 32 + tx * 4);
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const float a = g[(ty + 32 * r) * LDG + j];
#pragma unroll
          for (int q = 0; q < 8; ++q) acc[r][q] = fmaf(a, bv[q], acc[r][q]);
        }
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        float* o = out + static_cast<int64_t>(ty + 32 * r) * pitch;
        *reinterpret_cast<float4*>(o + tx * 4) = make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
        *reinterpret_cast<float4*>(o + 32 + tx * 4) = make_float4(acc[r][4], acc[r][5], acc[r][6], acc[r][7]);
      }
      __syncthreads();
    }
  }
};

}  // namespace mbvr::cuda
