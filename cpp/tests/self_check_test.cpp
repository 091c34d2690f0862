// The CUDA self-check's logic (cpp/self_check.h), tested without a GPU: the CPU backend
// stands in for the device, as it is, or with an injected mismatch or failure. A failed
// check makes CUDA unavailable with the measured error as the reason; then backend 'auto'
// runs on the CPU and backend 'cuda' throws that reason (choose_backend).
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "cpu/cpu_backend.h"
#include "mbvr.h"
#include "self_check.h"

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

// The CPU as the "device": `scale` multiplies the fused gradient at `precision` only.
mbvr::LossFunction fake_device(mbvr::Precision precision, float scale) {
  return [=](mbvr::LossOutputs& out, const mbvr::LossParams& p) {
    mbvr::LossParams cpu = p;
    cpu.backend = mbvr::Backend::Cpu;
    const mbvr::Precision asked = p.precision;
    cpu.precision = mbvr::Precision::Fp32;
    mbvr::cpu::loss(out, cpu);
    if (asked == precision)
      for (int64_t e = 0; e < p.batch * p.dim; ++e) out.d_fused[e] *= scale;
  };
}

mbvr::CudaInfo usable_gpu() {
  mbvr::CudaInfo info;
  info.compiled = true;
  info.available = true;
  return info;
}

}  // namespace

int main() {
  using mbvr::Backend;
  using mbvr::Precision;

  const mbvr::SelfCheckResult same = mbvr::self_check(fake_device(Precision::Fp32, 1.0f));
  check(same.passed && same.worst_ratio < 0.1, "the CPU against itself passes (worst " + same.worst + ")");
  check(same.seconds > 0, "the check reports its time: " + std::to_string(same.seconds * 1000) + " ms with the CPU as the device");

  const mbvr::SelfCheckResult off = mbvr::self_check(fake_device(Precision::Fp32, 1.01f));
  check(!off.passed, "a 1% error in grads.fused at fp32 fails");
  check(off.worst.find("grads.fused at fp32: relative error 1.0e-02 (bound 1e-05)") != std::string::npos,
        "the reason names the output, the precision and the measured error: " + off.worst);

  const mbvr::SelfCheckResult tf32 = mbvr::self_check(fake_device(Precision::Tf32, 1.005f));
  check(!tf32.passed && tf32.worst.find("at tf32") != std::string::npos, "5e-3 at tf32 fails (bound 2e-3): " + tf32.worst);
  const mbvr::SelfCheckResult bf16 = mbvr::self_check(fake_device(Precision::Bf16, 1.01f));
  check(bf16.passed, "1e-2 at bf16 passes (bound 2e-2): " + bf16.worst);

  const mbvr::SelfCheckResult broken = mbvr::self_check([](mbvr::LossOutputs&, const mbvr::LossParams&) {
    throw std::runtime_error("an illegal memory access was encountered");
  });
  check(!broken.passed && broken.worst.find("illegal memory access") != std::string::npos,
        "a device that throws fails: " + broken.worst);

  mbvr::CudaInfo info = usable_gpu();
  mbvr::apply_self_check(info, off);
  check(!info.available, "a failed check makes CUDA unavailable");
  check(info.reason.find("self-check failed") != std::string::npos &&
            info.reason.find("relative error 1.0e-02") != std::string::npos,
        "with the measured error as the reason: " + info.reason);
  check(mbvr::choose_backend(Backend::Auto, Precision::Fp32, info) == Backend::Cpu, "'auto' then runs on the CPU");
  try {
    mbvr::choose_backend(Backend::Cuda, Precision::Fp32, info);
    check(false, "'cuda' throws");
  } catch (const mbvr::Error& e) {
    check(std::string(e.what()) == "The CUDA backend is unavailable: " + info.reason, std::string("'cuda' throws the reason: ") + e.what());
  }

  mbvr::CudaInfo good = usable_gpu();
  mbvr::apply_self_check(good, same);
  check(good.available && good.self_check_run && good.self_check_passed, "a passed check keeps CUDA available");
  check(mbvr::choose_backend(Backend::Auto, Precision::Fp32, good) == Backend::Cuda, "'auto' then runs on CUDA");

  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
