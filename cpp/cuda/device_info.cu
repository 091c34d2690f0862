// Whether the CUDA backend can run here, as facts a user can act on: the addon was
// built with CUDA (always true in this file), a driver is present and new enough,
// and at least one device exists.
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "../self_check.h"
#include "cuda_backend.h"
#include "softmax_tiles.cuh"

namespace mbvr::cuda {
namespace {

CudaInfo probe() {
  CudaInfo info;
  info.compiled = true;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaError_t err = cudaDriverGetVersion(&info.driver_version);
  if (err != cudaSuccess || info.driver_version == 0) {
    info.reason = "no NVIDIA driver was found on this machine (libcuda.so could not be loaded); "
                  "install the NVIDIA driver, or use backend: 'cpu'";
    cudaGetLastError();
    return info;
  }
  int count = 0;
  err = cudaGetDeviceCount(&count);
  if (err == cudaErrorInsufficientDriver) {
    info.reason = "the NVIDIA driver (CUDA " + std::to_string(info.driver_version / 1000) + "." +
                  std::to_string(info.driver_version % 1000 / 10) +
                  ") is older than the CUDA runtime this addon was built with (" +
                  std::to_string(info.runtime_version / 1000) + "." +
                  std::to_string(info.runtime_version % 1000 / 10) + "); update the driver";
  } else if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    info.reason = "the NVIDIA driver is installed but no CUDA device is visible "
                  "(check CUDA_VISIBLE_DEVICES and nvidia-smi)";
  } else if (err != cudaSuccess) {
    info.reason = std::string("the CUDA runtime could not start: ") + cudaGetErrorString(err);
  }
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return info;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    DeviceInfo dev;
    dev.index = d;
    dev.name = prop.name;
    dev.compute_major = prop.major;
    dev.compute_minor = prop.minor;
    dev.total_memory = prop.totalGlobalMem;
    info.devices.push_back(dev);
  }
  bool usable = false, new_enough = false;
  // The tile kernels' smaller version needs this much shared memory per block (about
  // 106 KB: A100, H100, H200 have it; sm_86 / sm_89 / sm_120 cards offer 99 KB).
  size_t need = 0;
  for (Precision p : {Precision::Fp32, Precision::Tf32, Precision::Bf16}) need = std::max(need, tile_smem_bytes(p, 2));
  std::string small_gpu;
  for (const auto& dev : info.devices) {
    if (dev.compute_major < 8) continue;
    new_enough = true;
    int optin = 0;
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev.index);
    if (static_cast<size_t>(optin) >= need) usable = true;
    else small_gpu = dev.name + " offers " + std::to_string(optin / 1024) + " KB";
  }
  cudaGetLastError();
  if (!new_enough) {
    info.reason = "no CUDA device of compute capability 8.0 or newer was found (mbvr's kernels need Ampere or later)";
    return info;
  }
  if (!usable) {
    info.reason = "mbvr's CUDA kernels need " + std::to_string(need / 1024) +
                  " KB of shared memory per block and no device has it (" + small_gpu + "); use backend: 'cpu'";
    return info;
  }
  info.available = true;
  return info;
}

}  // namespace

CudaInfo info() {
  static std::once_flag once;
  static CudaInfo cached;
  std::call_once(once, [] {
    cached = probe();
    if (!cached.available) return;
    // The first use of a usable device runs the self-check (self_check.h); a failure
    // (of the kernels, or of the runtime while they run) makes CUDA unavailable.
    apply_self_check(cached, self_check([](LossOutputs& out, const LossParams& p) { cuda::loss(out, p); }));
  });
  return cached;
}

}  // namespace mbvr::cuda
