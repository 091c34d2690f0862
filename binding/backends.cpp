#include "backends.h"

#include "mbvr.h"

namespace mbvr::binding {

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuInfo host = cpu_info();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("available", true);
  cpu.Set("threads", host.threads);
  cpu.Set("simd", host.simd);
  cpu.Set("gemm", host.gemm);
  Napi::Object bf16 = Napi::Object::New(env);
  bf16.Set("native", host.bf16_native);
  bf16.Set("kernel", host.bf16_gemm);
  cpu.Set("bf16", bf16);

  const CudaInfo ci = cuda_info();
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", ci.compiled);
  cuda.Set("available", ci.available);
  Napi::Array devices = Napi::Array::New(env, ci.devices.size());
  for (size_t i = 0; i < ci.devices.size(); ++i) {
    const DeviceInfo& d = ci.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
    o.Set("totalMemory", static_cast<double>(d.total_memory));
    devices.Set(static_cast<uint32_t>(i), o);
  }
  cuda.Set("devices", devices);
  if (!ci.available) cuda.Set("reason", ci.reason);
  if (ci.self_check_run) {
    Napi::Object check = Napi::Object::New(env);
    check.Set("passed", ci.self_check_passed);
    check.Set("worst", ci.self_check_worst);
    check.Set("ms", ci.self_check_seconds * 1000);
    cuda.Set("selfCheck", check);
  }
  if (ci.compiled) {
    cuda.Set("runtimeVersion", ci.runtime_version);
    cuda.Set("driverVersion", ci.driver_version);
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("cpu", cpu);
  result.Set("cuda", cuda);
  return result;
}

}  // namespace mbvr::binding
