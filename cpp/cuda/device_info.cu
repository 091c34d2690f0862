// Whether the CUDA backend can run here, as facts a user can act on: the addon was
// built with CUDA (always true in this file), a driver is present and new enough,
// and at least one device exists.
#include <cuda_runtime.h>

#include <mutex>

#include "cuda_backend.h"

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
  bool usable = false;
  for (const auto& dev : info.devices) usable |= dev.compute_major >= 8;
  if (!usable) {
    info.reason = "no CUDA device of compute capability 8.0 or newer was found (mbvr's kernels need Ampere or later)";
    return info;
  }
  info.available = true;
  return info;
}

}  // namespace

CudaInfo info() {
  static std::once_flag once;
  static CudaInfo cached;
  std::call_once(once, [] { cached = probe(); });
  return cached;
}

}  // namespace mbvr::cuda
