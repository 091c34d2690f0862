// Typed arrays in and out of the MPI addon (JS thread only). Only memory safety is
// checked here, tersely; src/mpi.ts gives the user-facing errors before calling in.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "collective.h"

namespace mbvr::mpi {

// A Float32Array, Float64Array, Int32Array or Uint8Array (a detached one reads as empty).
struct DataArgument {
  Dtype dtype = Dtype::None;
  int64_t length = 0;
  const void* data = nullptr;  // valid until JS runs again: copy before returning to JS
};
DataArgument read_data(Napi::Env env, Napi::Value value);

// An Array of `size` whole numbers in [0, 2^31 - 1].
std::vector<int64_t> read_counts(Napi::Env env, Napi::Value value, int size);

// A new typed array of `dtype` over `buffer`'s first `length` elements. Hands the memory
// to JS without a copy (an external ArrayBuffer, freed with free()), or copies it where
// the runtime does not allow external buffers.
Napi::Value to_typed_array(Napi::Env env, Dtype dtype, OwnedBuffer buffer, int64_t length);

}  // namespace mbvr::mpi
