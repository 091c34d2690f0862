// Helpers for code the compiler should vectorize, and the run-time dispatch attribute.
#pragma once

#include <cstdint>
#include <cstring>

// MBVR_DISPATCH compiles a function for AVX-512, AVX2+FMA and baseline x86-64 and
// picks one at load time (GCC/Clang function multi-versioning). Callees marked
// MBVR_INLINE are inlined into each clone and so compiled for its instruction set.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(MBVR_NO_DISPATCH)
#define MBVR_DISPATCH __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define MBVR_DISPATCH
#endif
#define MBVR_INLINE inline __attribute__((always_inline))

namespace mbvr::cpu {

// exp(x) in float, about 2 ulp, branch-free so loops over it vectorize; exact 0 for
// x = -inf (masked logits) and for x below the float range.
MBVR_INLINE float exp_approx(float x) {
  const float lo = -87.33654f, hi = 88.37626f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  // x = n ln2 + r, |r| <= ln2 / 2; ln2 split in two for an exact product n * ln2.
  float n = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);
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

}  // namespace mbvr::cpu
