#include "self_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "cpu/cpu_backend.h"

namespace mbvr {
namespace {

constexpr int64_t kB = 130, kD = 72, kK = 2;

// Deterministic rows of about unit norm (no library generator: the same on every
// platform); `near` rows lean towards `base` (the confident positives).
std::vector<float> rows(uint64_t seed, int64_t n, const std::vector<float>* near = nullptr, float lean = 0) {
  std::vector<float> x(static_cast<size_t>(n * kD));
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t e = 0; e < x.size(); ++e) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const double u = static_cast<double>(state >> 11) / 9007199254740992.0;  // [0, 1)
    const double v = (u - 0.5) * 3.4641016 / std::sqrt(static_cast<double>(kD));  // unit variance per row
    x[e] = static_cast<float>(near ? lean * (*near)[e % near->size()] + (1 - lean) * v : v);
  }
  return x;
}

struct Problem {
  std::vector<float> query, fused, visual, text, shuffled, margin;
  std::vector<int32_t> labels;
  LossParams params(Precision precision, Backend backend) const {
    LossParams p;
    p.query = query.data();
    p.fused = fused.data();
    p.visual = visual.data();
    p.text = text.data();
    p.shuffled = shuffled.data();
    p.batch = kB;
    p.dim = kD;
    p.k = kK;
    p.temperature = 0.01;
    p.alpha = 0.7;
    p.beta = 0.5;
    p.gamma = 0.8;
    p.margin_per_row = margin.data();
    p.labels = labels.data();
    p.precision = precision;
    p.backend = backend;
    return p;
  }
};

Problem make_problem() {
  Problem pr;
  pr.query = rows(1, kB);
  pr.fused = rows(2, kB, &pr.query, 0.9f);  // positives close to their queries
  pr.visual = rows(3, kB, &pr.query, 0.5f);
  pr.text = rows(4, kB, &pr.query, 0.7f);
  pr.shuffled = rows(5, kB * kK);
  pr.margin.resize(kB);
  pr.labels.resize(kB);
  for (int64_t i = 0; i < kB; ++i) {
    pr.margin[i] = 0.05f * static_cast<float>(i % 3);
    pr.labels[i] = static_cast<int32_t>(i % 97);  // rows i and i + 97 are duplicates
  }
  return pr;
}

struct Run {
  LossOutputs out;
  std::vector<float> grads[5];
};

void run(Run& r, const LossFunction& fn, const LossParams& p) {
  const int64_t sizes[5] = {kB * kD, kB * kD, kB * kD, kB * kD, kB * kK * kD};
  float** outs[5] = {&r.out.d_query, &r.out.d_fused, &r.out.d_visual, &r.out.d_text, &r.out.d_shuffled};
  for (int g = 0; g < 5; ++g) {
    r.grads[g].assign(static_cast<size_t>(sizes[g]), 0.0f);
    *outs[g] = r.grads[g].data();
  }
  fn(r.out, p);
}

double relative(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t e = 0; e < a.size(); ++e) {
    const double d = static_cast<double>(a[e]) - b[e];
    num += d * d;
    den += static_cast<double>(b[e]) * b[e];
  }
  return std::isfinite(num) ? std::sqrt(num / std::max(den, 1e-300)) : INFINITY;
}

double relative(double a, double b, double floor = 1e-300) {
  const double e = std::abs(a - b) / std::max(std::abs(b), floor);
  return std::isfinite(e) ? e : INFINITY;
}

}  // namespace

SelfCheckResult self_check(const LossFunction& device) {
  const auto start = std::chrono::steady_clock::now();
  const Problem problem = make_problem();
  Run cpu;
  run(cpu, [](LossOutputs& out, const LossParams& p) { cpu::loss(out, p); }, problem.params(Precision::Fp32, Backend::Cpu));

  SelfCheckResult result;
  result.worst_ratio = -1;  // the first comparison is recorded, even an exact one
  const Precision precisions[3] = {Precision::Fp32, Precision::Tf32, Precision::Bf16};
  const double bounds[3] = {1e-5, 2e-3, 2e-2};
  const char* names[5] = {"grads.query", "grads.fused", "grads.visual", "grads.text", "grads.shuffled"};
  for (int n = 0; n < 3; ++n) {
    Run dev;
    try {
      run(dev, device, problem.params(precisions[n], Backend::Cuda));
    } catch (const std::exception& e) {  // the device failed to run it at all
      result.passed = false;
      result.worst_ratio = INFINITY;
      result.worst = std::string("at ") + precision_name(precisions[n]) + " the run failed: " + e.what();
      break;
    }
    const auto note = [&](const std::string& what, double error) {
      const double ratio = error / bounds[n];
      if (!(ratio <= result.worst_ratio)) {  // also takes NaN
        char text[160];
        std::snprintf(text, sizeof text, "%s at %s: relative error %.1e (bound %.0e)", what.c_str(),
                      precision_name(precisions[n]), error, bounds[n]);
        result.worst_ratio = std::isnan(ratio) ? INFINITY : ratio;
        result.worst = text;
      }
    };
    note("loss", relative(dev.out.loss, cpu.out.loss));
    const double* dt = &dev.out.terms.qm;
    const double* ct = &cpu.out.terms.qm;
    const char* terms[5] = {"terms.qm", "terms.mq", "terms.v", "terms.t", "terms.ms"};
    for (int t = 0; t < 5; ++t) note(terms[t], relative(dt[t], ct[t]));
    for (int g = 0; g < 5; ++g) note(names[g], relative(dev.grads[g], cpu.grads[g]));
    // dL/dtau sums terms of order |z| / tau that cancel: below 1 it is compared absolutely.
    note("grads.temperature", relative(dev.out.d_temperature, cpu.out.d_temperature, 1.0));
  }
  result.worst_ratio = std::max(result.worst_ratio, 0.0);
  result.passed = result.passed && result.worst_ratio <= 1.0;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void apply_self_check(CudaInfo& info, const SelfCheckResult& check) {
  info.self_check_run = true;
  info.self_check_passed = check.passed;
  info.self_check_seconds = check.seconds;
  info.self_check_worst = check.worst;
  if (check.passed || !info.available) return;
  info.available = false;
  info.reason = "the CUDA self-check failed: on a small fixed problem the GPU's results differ from the CPU's (" +
                check.worst + "); mbvr will not use this GPU. Please report it with backends() output";
}

}  // namespace mbvr
