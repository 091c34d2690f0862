// One way to check CUDA calls: CUDA_CHECK(call) throws mbvr::Error with file:line and
// the runtime's message; CUDA_CHECK_LAUNCH() after every kernel launch. Never exit().
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "../mbvr.h"

namespace mbvr::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  // Clear the thread's recorded error: a non-sticky failure (a bad argument) would
  // otherwise resurface from the next, unrelated CUDA_CHECK_LAUNCH() on this thread (a
  // libuv worker that serves later calls). Harmless for sticky errors.
  (void)cudaGetLastError();
  std::string msg = std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                    "): " + cudaGetErrorString(err);
  if (err == cudaErrorMemoryAllocation) msg = "GPU out of memory: " + msg;
  throw Error(ErrorKind::Generic, msg);
}

}  // namespace mbvr::cuda

#define CUDA_CHECK(call)                                                             \
  do {                                                                               \
    cudaError_t err_ = (call);                                                       \
    if (err_ != cudaSuccess) ::mbvr::cuda::throw_cuda_error(err_, #call, __FILE__, __LINE__); \
  } while (0)

#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
