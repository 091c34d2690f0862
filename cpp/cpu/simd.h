// Helpers for code the compiler should vectorize, and the run-time dispatch attribute.
#pragma once

#include <cstdint>
#include <cstring>

// MBVR_DISPATCH compiles a function three times, for AVX-512, for AVX2 and for baseline
// x86-64, and picks one at load time (function multi-versioning: target_clones). Callees
// marked MBVR_INLINE are inlined into each clone and so compiled for its instruction set.
//
// It declares the function static: a dispatched function must have internal linkage,
// and a file's external entry point calls it, e.g.
//   MBVR_DISPATCH void scale_simd(float* z, int64_t n) { ... }
//   void scale(float* z, int64_t n) { scale_simd(z, n); }
// because Clang 14 gets target_clones wrong on an external function: with a prior
// declaration in a namespace (our headers) it silently compiles one baseline version,
// and without one it emits no symbol under the function's own name (other files fail
// to link). The `static` turns the first case into a compile error under any compiler
// ("declared extern and later static"). Clang 14 still gives each clone set's resolver
// an external symbol, so two files must not dispatch functions of the same name and
// signature (a "multiple definition" link error says so).
//
// The clones, per compiler (MBVR_CLONE_AVX512 / MBVR_CLONE_AVX2 name them):
//   GCC 12+: ISA levels "arch=x86-64-v4" (AVX-512 F/BW/CD/DQ/VL) and "arch=x86-64-v3"
//     (AVX2, FMA, BMI2, ...). Levels, not CPU names: "arch=skylake-avx512" is chosen only
//     on that Intel model, so an AMD Zen 4 with AVX-512 silently ran the baseline clone.
//   Clang, older GCC: one feature per clone, "avx512f" (which implies AVX2 and FMA) and
//     "avx2" (without FMA). target_clones takes no feature lists (a comma separates
//     clones), and Clang 14 accepts "arch=x86-64-v4" but its resolver only compares the
//     CPU vendor field with 0 (seen in the disassembly): on Intel and AMD the baseline
//     clone always ran, and the v3 clone never.
// Elsewhere the compile-time target alone decides: not x86-64, MBVR_NO_DISPATCH, or not
// ELF (the clones are chosen through an ELF ifunc; GCC has no other way, and Clang's
// multi-versioning on Mach-O and COFF is newer than the compilers we test).
// cpu/info.cpp reports the clone the dispatch picks (backends().cpu.simd) through a
// function versioned with the same MBVR_CLONE_* strings, i.e. the same resolver.
#if defined(__x86_64__) && defined(__ELF__) && defined(__has_attribute) && !defined(MBVR_NO_DISPATCH)
#if __has_attribute(target_clones)
#define MBVR_HAVE_DISPATCH 1
#endif
#endif

#ifdef MBVR_HAVE_DISPATCH
#if defined(__clang__) || __GNUC__ < 12
#define MBVR_CLONE_AVX512 "avx512f"
#define MBVR_CLONE_AVX2 "avx2"
#else
#define MBVR_CLONE_AVX512 "arch=x86-64-v4"
#define MBVR_CLONE_AVX2 "arch=x86-64-v3"
#endif
// AVX2 first: Clang 14 checks the vector-argument ABI of the calls in a target_clones
// function against its first listed clone only. With AVX-512 first, every call to an MBVR_INLINE
// helper taking a vf16 is an error ("without 'avx512f' enabled changes the ABI"); with
// AVX2 first it is the -Wpsabi warning silenced below. No such call survives: the helpers
// are always inlined. (The order of the list does not change which clone is picked.)
#define MBVR_DISPATCH static __attribute__((target_clones(MBVR_CLONE_AVX2, MBVR_CLONE_AVX512, "default")))
#else
#define MBVR_DISPATCH static
#endif
#define MBVR_INLINE inline __attribute__((always_inline))

// 16-float vectors through GCC/Clang vector extensions: one source that each
// MBVR_DISPATCH clone compiles to its own registers (1 zmm, 2 ymm or 4 xmm). Passed by
// value only between always-inline functions, so no ABI question arises.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace mbvr::cpu {

constexpr int kLanes = 16;
typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));
typedef double vd8 __attribute__((vector_size(64)));

MBVR_INLINE vf16 load16(const float* p) {
  vf16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
MBVR_INLINE void store16(float* p, vf16 v) { std::memcpy(p, &v, sizeof v); }
MBVR_INLINE vf16 splat16(float x) { return vf16{} + x; }
MBVR_INLINE vf16 max16(vf16 a, vf16 b) { return a > b ? a : b; }

// exp(x) in float, about 2 ulp, branch-free so loops over it vectorize; exact 0 for
// x = -inf (masked logits) and for x below the float range.
MBVR_INLINE float exp_approx(float x) {
  const float lo = -87.33654f, hi = 88.37626f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  // x = n ln2 + r, |r| <= ln2 / 2; ln2 split in two for an exact product n * ln2. n is
  // rounded to nearest through the 1.5 * 2^23 trick, as exp16 does.
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < lo ? 0.0f : y * scale;
}

// exp_approx on 16 lanes, the same steps (so the same results up to FMA contraction).
MBVR_INLINE vf16 exp16(vf16 x) {
  const vf16 lo = splat16(-87.33654f), hi = splat16(88.37626f);
  vf16 xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  // Round to nearest through the 1.5 * 2^23 trick (|x * log2 e| < 2^22 after the clamp).
  const vf16 magic = splat16(12582912.0f);
  const vf16 n = (xc * 1.44269504088896341f + magic) - magic;
  vf16 r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  vf16 p = splat16(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const vf16 y = p * r * r + r + 1.0f;
  const vi16 bits = (__builtin_convertvector(n, vi16) + 127) << 23;  // 2^n
  vf16 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < lo ? vf16{} : y * scale;
}

// Sums of exponentials are kept in double: with one term near 1 and the rest tiny (a
// confident softmax) a float sum loses exactly the part the loss is made of.
struct Acc16 {
  vd8 lo{}, hi{};
  MBVR_INLINE void add(vf16 v) {
    lo += __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), vd8);
    hi += __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), vd8);
  }
  MBVR_INLINE void store(double* p) const {
    std::memcpy(p, &lo, sizeof lo);
    std::memcpy(p + 8, &hi, sizeof hi);
  }
  MBVR_INLINE double sum() const {  // in lane order
    double s = 0;
    for (int l = 0; l < 8; ++l) s += lo[l];
    for (int l = 0; l < 8; ++l) s += hi[l];
    return s;
  }
};

// Lane i of a 16-lane block starting at column i0 equals `col`? (To leave one entry, the
// positive, out of a vector sum.)
MBVR_INLINE vi16 lane_is(int64_t i0, int64_t col) {
  const vi16 idx = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const int64_t d = col - i0;
  const int32_t k = d >= 0 && d < kLanes ? static_cast<int32_t>(d) : -1;
  return idx == k;
}

// Lane sum in lane order (a fixed order: part of the determinism contract).
MBVR_INLINE double sum_lanes(vf16 v) {
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += v[l];
  return s;
}
MBVR_INLINE float max_lanes(vf16 v) {
  float m = v[0];
  for (int l = 1; l < kLanes; ++l) m = v[l] > m ? v[l] : m;
  return m;
}

}  // namespace mbvr::cpu
