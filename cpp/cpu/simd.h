// Helpers for code the compiler should vectorize, and the run-time dispatch attribute.
#pragma once

#include <cstdint>
#include <cstring>

// MBVR_DISPATCH compiles a function for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and
// baseline x86-64 and picks one at load time (GCC function multi-versioning). Callees
// marked MBVR_INLINE are inlined into each clone and so compiled for its instruction set.
// ISA levels, not CPU names: "arch=skylake-avx512" is chosen only on that Intel model,
// so an AMD Zen 4 with AVX-512 silently ran the baseline clone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(MBVR_NO_DISPATCH)
#define MBVR_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MBVR_DISPATCH
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
