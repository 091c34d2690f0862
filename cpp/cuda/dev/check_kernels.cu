// Standalone check and benchmark of the CUDA backend (llm.c style). Not part of the
// addon (this folder is not globbed by CMake).
//
// Build (from the repository root; scripts/gpu-check.sh does this):
//   nvcc -O3 -std=c++17 --expt-relaxed-constexpr -arch=sm_90 -Xcompiler -fopenmp -Icpp
//        cpp/cuda/dev/check_kernels.cu cpp/cuda/*.cu cpp/mbvr.cpp cpp/cpu/*.cpp
//        -o build-dev/check_kernels -lpthread -lgomp
//
// Modes:
//   check_kernels                    correctness suite, then timings (B = 4096, 32768)
//   check_kernels --check            correctness suite only
//   check_kernels --small            two small cases (for compute-sanitizer)
//   check_kernels --bench B,B,...    timings only; --json FILE writes them; --big adds one
//                                    B = 131072 run; --versions 1,2 picks kernel versions
//   check_kernels --io DIR           runs the loss on the case in DIR (format: case_io.h;
//                                    written by scripts/torch_reference.py)
//   check_kernels --cpu-only         the suite through the CPU backend only (no GPU needed)
//
// The correctness suite runs random configurations (duplicate labels, per-row margins,
// K > 1, tau = 0.01, normalize off, zero weights with inputs given, partial gradient
// requests) through the CUDA backend at fp32, tf32 and bf16, with both tile kernel
// versions, and through the CPU backend; each is compared with the float64 reference of
// reference64.h (docs/math.md sections 2-3 in plain loops; test/transcriptions.test.ts
// holds it to src/reference.ts). Relative error ||out - ref|| / ||ref|| per output;
// limits 1e-5 (fp32, cpu), 2e-3 (tf32), 2e-2 (bf16). Exit status 1 on failure.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "cuda/dev/case_io.h"
#include "cuda/dev/reference64.h"
#include "cuda/device_tensors.h"
#include "cuda/softmax_tiles.cuh"
#include "mbvr.h"

using mbvr::Backend;
using mbvr::Precision;
using std::vector;

// ---------------------------------------------------------------------------
// Cases and data.

struct Case {
  std::string name;
  int64_t B = 64, D = 32, K = 1;
  double tau = 0.05, alpha = 1, beta = 1, gamma = 1;
  bool normalize = true;
  int margin_mode = 0;  // 0: none, 1: `margin` for every row, 2: per row in [0, 0.3)
  double margin = 0.2;
  bool labels = false;  // duplicate labels
  bool want[5] = {true, true, true, true, true};
  bool grads = true;
  double scale = 1.0;   // row scale
  double corr = 0.1;    // correlation of q_i with m_i, v_i, t_i (corr / tau well below
                        // saturation, where fp32 gradients are lost to cancellation)
  bool give_all = true; // pass visual/text/shuffled even when their weight is 0
  bool ref64 = true;    // float64 reference (else: the CPU backend is the reference)
  uint64_t seed = 1;
};

using Data = mbvr::ref64::Inputs;
using Result = mbvr::ref64::Result;
using mbvr::ref64::kGradNames;

Data make_data(const Case& c) {
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  const double sd = c.scale / std::sqrt(static_cast<double>(c.D));
  const double r = c.corr, w = std::sqrt(1 - c.corr * c.corr);
  Data d;
  const int64_t n = c.B * c.D;
  d.q.resize(n), d.m.resize(n), d.v.resize(n), d.t.resize(n), d.s.resize(n * c.K);
  for (int64_t e = 0; e < n; ++e) {
    const double q = n01(rng);
    d.q[e] = static_cast<float>(sd * q);
    d.m[e] = static_cast<float>(sd * (r * q + w * n01(rng)));
    d.v[e] = static_cast<float>(sd * (0.5 * r * q + std::sqrt(1 - 0.25 * r * r) * n01(rng)));
    d.t[e] = static_cast<float>(sd * (r * q + w * n01(rng)));
  }
  for (auto& x : d.s) x = static_cast<float>(sd * n01(rng));
  if (c.labels) {
    std::uniform_int_distribution<int> lab(0, static_cast<int>(std::max<int64_t>(1, c.B / 2)));
    d.labels.resize(c.B);
    for (auto& l : d.labels) l = lab(rng);
  }
  if (c.margin_mode == 2) {
    std::uniform_real_distribution<double> u(0.0, 0.3);
    d.margin.resize(c.B);
    for (auto& x : d.margin) x = static_cast<float>(u(rng));
  }
  return d;
}

// The float64 reference (reference64.h) of a case: margin_mode picks no margin, c.margin
// for every row, or d.margin per row.
mbvr::ref64::Options reference_options(const Case& c) {
  mbvr::ref64::Options o;
  o.B = c.B, o.D = c.D, o.K = c.K;
  o.tau = c.tau, o.alpha = c.alpha, o.beta = c.beta, o.gamma = c.gamma;
  o.normalize = c.normalize;
  o.margin = c.margin_mode == 1 ? c.margin : 0.0;
  o.grads = c.grads;
  for (int t = 0; t < 5; ++t) o.want[t] = c.want[t];
  return o;
}

Result reference(const Case& c, const Data& d) { return mbvr::ref64::loss(reference_options(c), d); }

// ---------------------------------------------------------------------------
// Running the core.

mbvr::LossParams params_for(const Case& c, const Data& d, Backend backend, Precision precision) {
  mbvr::LossParams p;
  p.query = d.q.data();
  p.fused = d.m.data();
  p.visual = (c.alpha > 0 || c.give_all) ? d.v.data() : nullptr;
  p.text = (c.beta > 0 || c.give_all) ? d.t.data() : nullptr;
  p.shuffled = (c.gamma > 0 || c.give_all) ? d.s.data() : nullptr;
  p.batch = c.B;
  p.dim = c.D;
  p.k = p.shuffled ? c.K : 0;
  p.temperature = c.tau;
  p.alpha = c.alpha;
  p.beta = c.beta;
  p.gamma = c.gamma;
  p.margin = c.margin_mode == 1 ? c.margin : 0.0;
  p.margin_per_row = c.margin_mode == 2 ? d.margin.data() : nullptr;
  p.labels = c.labels ? d.labels.data() : nullptr;
  p.normalize = c.normalize;
  p.grads = c.grads;
  p.backend = backend;
  p.precision = precision;
  return p;
}

struct RunOut {
  mbvr::LossOutputs out;
  vector<float> g[5];
};

RunOut run_core(const Case& c, const Data& d, Backend backend, Precision precision) {
  mbvr::LossParams p = params_for(c, d, backend, precision);
  RunOut r;
  const int64_t sizes[5] = {c.B * c.D, c.B * c.D, c.B * c.D, c.B * c.D, c.B * c.K * c.D};
  const bool given[5] = {true, true, p.visual != nullptr, p.text != nullptr, p.shuffled != nullptr};
  float** ptrs[5] = {&r.out.d_query, &r.out.d_fused, &r.out.d_visual, &r.out.d_text, &r.out.d_shuffled};
  for (int t = 0; t < 5; ++t)
    if (c.grads && c.want[t] && given[t]) {
      r.g[t].assign(sizes[t], std::nanf(""));  // every element must be written
      *ptrs[t] = r.g[t].data();
    }
  mbvr::loss(r.out, p);
  return r;
}

Result to_result(const RunOut& r) {
  Result x;
  x.loss = r.out.loss, x.qm = r.out.terms.qm, x.mq = r.out.terms.mq, x.v = r.out.terms.v, x.t = r.out.terms.t;
  x.ms = r.out.terms.ms, x.dtau = r.out.d_temperature;
  for (int t = 0; t < 5; ++t) x.g[t].assign(r.g[t].begin(), r.g[t].end());
  return x;
}

// ---------------------------------------------------------------------------
// Comparison.

double rel_scalar(double a, double b) {
  if (!std::isfinite(a)) return INFINITY;
  const double den = std::fabs(b);
  return den > 1e-12 ? std::fabs(a - b) / den : std::fabs(a - b);
}

double rel_vec(const vector<double>& a, const vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  if (den == 0) return std::sqrt(num);  // a zero reference: the output must be zero
  return std::sqrt(num / den);
}

struct Check {
  double worst = 0;
  std::string worst_name;
  std::string detail;
};

Check compare(const Case& c, const Result& out, const Result& ref) {
  Check k;
  auto add = [&](const char* name, double e) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %s=%.1e", name, e);
    k.detail += buf;
    if (!(e <= k.worst)) {
      k.worst = e;
      k.worst_name = name;
    }
  };
  add("loss", rel_scalar(out.loss, ref.loss));
  add("qm", rel_scalar(out.qm, ref.qm));
  add("mq", rel_scalar(out.mq, ref.mq));
  if (c.alpha > 0) add("v", rel_scalar(out.v, ref.v));
  if (c.beta > 0) add("t", rel_scalar(out.t, ref.t));
  if (c.gamma > 0) add("ms", rel_scalar(out.ms, ref.ms));
  if (c.grads) {
    add("dtau", rel_scalar(out.dtau, ref.dtau));
    for (int t = 0; t < 5; ++t)
      if (!ref.g[t].empty() && !out.g[t].empty()) add(kGradNames[t], rel_vec(out.g[t], ref.g[t]));
  }
  return k;
}

double limit_for(Precision p) { return p == Precision::Fp32 ? 1e-5 : p == Precision::Tf32 ? 2e-3 : 2e-2; }

int g_failures = 0;

void set_version(int v) {
  if (v == 0) unsetenv("MBVR_CUDA_KERNEL");
  else setenv("MBVR_CUDA_KERNEL", std::to_string(v).c_str(), 1);
}

bool same_bits(const RunOut& a, const RunOut& b) {
  if (a.out.loss != b.out.loss || a.out.d_temperature != b.out.d_temperature) return false;
  for (int t = 0; t < 5; ++t)
    if (a.g[t].size() != b.g[t].size() || std::memcmp(a.g[t].data(), b.g[t].data(), a.g[t].size() * 4) != 0)
      return false;
  return true;
}

// counts = false: informational (the CPU backend is not what this harness checks).
void report(const char* label, const Case& c, const Check& k, double limit, bool extra_fail = false,
            bool counts = true) {
  const bool ok = k.worst <= limit && !extra_fail;
  if (!ok && counts) ++g_failures;
  std::printf("%-4s %-28s %-16s worst %.2e (%s, limit %.0e)\n", ok ? "ok" : counts ? "FAIL" : "note", c.name.c_str(),
              label, k.worst, k.worst_name.c_str(), limit);
  if (!ok) std::printf("       %s\n", k.detail.c_str());
  std::fflush(stdout);
}

vector<Case> suite(bool small) {
  vector<Case> v;
  auto add = [&](Case c) { v.push_back(c); };
  {
    Case c; c.name = "B1 D8"; c.B = 1; c.D = 8; c.seed = 11; add(c);
  }
  {
    Case c; c.name = "B7 D3 K2 nonorm labels"; c.B = 7; c.D = 3; c.K = 2; c.tau = 0.5; c.normalize = false;
    c.labels = true; c.seed = 12; add(c);
  }
  {
    Case c; c.name = "B130 D64 tau.01 lab margins"; c.B = 130; c.D = 64; c.tau = 0.01; c.labels = true;
    c.margin_mode = 2; c.corr = 0.05; c.seed = 13; add(c);
  }
  {
    Case c; c.name = "B300 D100 K3 a0 b.5 scalar"; c.B = 300; c.D = 100; c.K = 3; c.alpha = 0; c.beta = 0.5;
    c.margin_mode = 1; c.scale = 3.0; c.seed = 14; add(c);
  }
  if (small) return v;
  {
    Case c; c.name = "B257 D512 tau.01 nonorm"; c.B = 257; c.D = 512; c.tau = 0.01; c.normalize = false;
    c.corr = 0.05; c.seed = 15; add(c);
  }
  {
    Case c; c.name = "B1000 D512 K2 lab margins"; c.B = 1000; c.D = 512; c.K = 2; c.labels = true;
    c.margin_mode = 2; c.gamma = 2; c.seed = 16; add(c);
  }
  {
    Case c; c.name = "B1000 D512 tau.01"; c.B = 1000; c.D = 512; c.tau = 0.01; c.corr = 0.05; c.seed = 17; add(c);
  }
  {
    Case c; c.name = "B700 D128 tau1 corr.9"; c.B = 700; c.D = 128; c.tau = 1.0; c.corr = 0.9; c.seed = 18; add(c);
  }
  {
    Case c; c.name = "B513 D256 g0 only dq"; c.B = 513; c.D = 256; c.tau = 0.02; c.gamma = 0; c.corr = 0.05;
    c.want[1] = c.want[2] = c.want[3] = false; c.seed = 19; add(c);
  }
  {
    Case c; c.name = "B384 D192 no grads"; c.B = 384; c.D = 192; c.grads = false; c.labels = true; c.seed = 20;
    add(c);
  }
  {
    Case c; c.name = "B200 D64 b0 g0 not given"; c.B = 200; c.D = 64; c.beta = 0; c.gamma = 0; c.give_all = false;
    c.want[3] = c.want[4] = false; c.seed = 21; add(c);
  }
  {
    Case c; c.name = "B4096 D512 lab margins (cpu ref)"; c.B = 4096; c.D = 512; c.labels = true; c.margin_mode = 2;
    c.tau = 0.03; c.ref64 = false; c.seed = 22; add(c);
  }
  return v;
}

void run_suite(bool small, bool cpu_only = false) {
  const Precision precisions[3] = {Precision::Fp32, Precision::Tf32, Precision::Bf16};
  for (const Case& c : suite(small)) {
    if (cpu_only && !c.ref64) continue;
    const Data d = make_data(c);
    Result ref;
    double cpu_limit = 1e-5;
    if (c.ref64) {
      ref = reference(c, d);
      const Result cpu = to_result(run_core(c, d, Backend::Cpu, Precision::Fp32));
      if (std::getenv("MBVR_CHECK_DEBUG") && c.B == 1) {
        std::printf("loss %.9g %.9g dtau %.9g %.9g\n", cpu.loss, ref.loss, cpu.dtau, ref.dtau);
        for (int t = 0; t < 5; ++t)
          for (size_t e = 0; e < cpu.g[t].size() && e < 8; ++e)
            std::printf("%s[%zu] %.9g %.9g\n", kGradNames[t], e, cpu.g[t][e], ref.g[t][e]);
      }
      const Check k = compare(c, cpu, ref);
      report("cpu", c, k, cpu_limit, false, /*counts=*/cpu_only);
    } else {
      ref = to_result(run_core(c, d, Backend::Cpu, Precision::Fp32));
    }
    if (cpu_only) continue;
    for (Precision p : precisions) {
      RunOut first;
      for (int version : {1, 2}) {
        set_version(version);
        RunOut r = run_core(c, d, Backend::Cuda, p);
        const Check k = compare(c, to_result(r), ref);
        const mbvr::cuda::TileMath math = mbvr::cuda::choose_tile_math(p, c.tau, c.D);
        std::string label = std::string(mbvr::precision_name(p)) + " v" + std::to_string(version) +
                            (math.precision != p ? "(tf32)" : "") + (math.split ? "(3x)" : "");
        // Against the CPU backend (itself within 1e-5), fp32 gets twice the room.
        const double limit = limit_for(p) * (c.ref64 || p != Precision::Fp32 ? 1.0 : 2.0);
        bool bits_differ = false;
        if (version == 1) {
          // Determinism: the same call again gives the same bits.
          RunOut again = run_core(c, d, Backend::Cuda, p);
          if (!same_bits(r, again)) {
            std::printf("FAIL %-28s %-10s two identical calls gave different bits\n", c.name.c_str(), label.c_str());
            bits_differ = true;
          }
          first = std::move(r);
        } else if (!same_bits(r, first)) {
          std::printf("note %-28s %-10s differs in bits from v1 (same math, different accumulation?)\n",
                      c.name.c_str(), label.c_str());
        }
        report(label.c_str(), c, k, limit, bits_differ);
      }
    }
  }
  set_version(0);
}

// ---------------------------------------------------------------------------
// The device-resident API, out-of-memory handling, similarity, shuffled logits.

void run_api_checks() {
  Case c;
  c.name = "device API B300 D100 K2";
  c.B = 300, c.D = 100, c.K = 2, c.labels = true, c.margin_mode = 2, c.seed = 31;
  const Data d = make_data(c);
  const RunOut host = run_core(c, d, Backend::Cuda, Precision::Tf32);
  {
    using namespace mbvr::cuda;
    DeviceMatrix q(c.B, c.D), m(c.B, c.D), v(c.B, c.D), t(c.B, c.D), s(c.B * c.K, c.D);
    PinnedBuffer pinned(c.B * c.D);
    std::memcpy(pinned.data(), d.q.data(), d.q.size() * 4);
    q.upload(pinned.data());
    m.upload(d.m.data()), v.upload(d.v.data()), t.upload(d.t.data()), s.upload(d.s.data());
    DeviceMatrix dq, dm, dv, dt, ds;
    LossSession session;
    mbvr::LossOutputs out;
    mbvr::LossParams opt = params_for(c, d, Backend::Cuda, Precision::Tf32);
    bool ok = true;
    for (int rep = 0; rep < 2; ++rep) {  // the second call reuses the workspace
      session.loss(out, {&q, &m, &v, &t, &s}, {&dq, &dm, &dv, &dt, &ds}, opt);
      RunOut dev;
      dev.out = out;
      DeviceMatrix* gm[5] = {&dq, &dm, &dv, &dt, &ds};
      for (int k = 0; k < 5; ++k) {
        dev.g[k].resize(host.g[k].size());
        gm[k]->download(dev.g[k].data());
      }
      ok = ok && same_bits(dev, host);
    }
    std::printf("%-4s %-28s device API gives the host API's bits (workspace %.1f MiB)\n", ok ? "ok" : "FAIL",
                c.name.c_str(), session.workspace_bytes() / 1048576.0);
    if (!ok) ++g_failures;
  }
  {
    bool ok = false;
    std::string msg;
    try {
      mbvr::cuda::DeviceMatrix huge(int64_t(1) << 26, 1024);  // 256 GiB
    } catch (const mbvr::Error& e) {
      msg = e.what();
      ok = msg.rfind("GPU out of memory", 0) == 0;
    }
    const RunOut after = run_core(c, d, Backend::Cuda, Precision::Tf32);
    ok = ok && same_bits(after, host);
    std::printf("%-4s out of memory -> \"%.60s...\", next call fine\n", ok ? "ok" : "FAIL", msg.c_str());
    if (!ok) ++g_failures;
  }
  {
    mbvr::SimilarityParams sp;
    sp.a = d.q.data(), sp.b = d.m.data(), sp.rows = 250, sp.cols = c.B, sp.dim = c.D, sp.temperature = 0.07;
    vector<float> a(250 * c.B), b(250 * c.B);
    mbvr::cpu::similarity(a.data(), sp);
    mbvr::cuda::similarity(b.data(), sp);
    const double e = rel_vec(vector<double>(b.begin(), b.end()), vector<double>(a.begin(), a.end()));
    const bool ok = e <= 1e-5;
    std::printf("%-4s similarity 250 x %lld vs cpu: %.2e\n", ok ? "ok" : "FAIL", static_cast<long long>(c.B), e);
    if (!ok) ++g_failures;
    mbvr::ShuffledLogitsParams lp;
    lp.query = d.q.data(), lp.shuffled = d.s.data(), lp.batch = c.B, lp.dim = c.D, lp.k = c.K;
    vector<float> x(c.B * c.K), y(c.B * c.K);
    mbvr::cpu::shuffled_logits(x.data(), lp);
    mbvr::cuda::shuffled_logits(y.data(), lp);
    const double e2 = rel_vec(vector<double>(y.begin(), y.end()), vector<double>(x.begin(), x.end()));
    const bool ok2 = e2 <= 1e-6;
    std::printf("%-4s shuffled_logits vs cpu: %.2e\n", ok2 ? "ok" : "FAIL", e2);
    if (!ok2) ++g_failures;
  }
}

// ---------------------------------------------------------------------------
// Timing: the device-resident API (inputs already on the GPU, like PyTorch's numbers).

struct Timing {
  int64_t B, D;
  std::string precision, mode;
  int version;
  double ms;
  double extra_mib;
};

double median(vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

vector<Timing> run_bench(const vector<int64_t>& batches, const vector<int>& versions, bool big) {
  using namespace mbvr::cuda;
  vector<Timing> all;
  const int64_t D = 512;
  vector<int64_t> list = batches;
  if (big) list.push_back(131072);
  for (int64_t B : list) {
    Case c;
    c.B = B, c.D = D, c.K = 1, c.seed = 99, c.corr = 0.3;
    const bool is_big = big && B == 131072;
    const Data d = make_data(c);
    DeviceMatrix q(B, D), m(B, D), v(B, D), t(B, D), s(B, D), dq, dm, dv, dt, ds;
    q.upload(d.q.data()), m.upload(d.m.data()), v.upload(d.v.data()), t.upload(d.t.data()), s.upload(d.s.data());
    LossSession session;
    for (Precision p : {Precision::Fp32, Precision::Tf32, Precision::Bf16}) {
      if (is_big && p == Precision::Fp32) continue;
      for (int version : versions) {
        set_version(version);
        mbvr::LossParams opt = params_for(c, d, Backend::Cuda, p);
        for (bool grads : {true, false}) {
          if (!grads && (version != versions.front() || is_big)) continue;
          opt.grads = grads;
          mbvr::LossOutputs out;
          const int warm = is_big ? 1 : 2, reps = is_big ? 2 : (B <= 8192 ? 20 : 10);
          vector<double> ms;
          for (int r = 0; r < warm + reps; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            session.loss(out, {&q, &m, &v, &t, &s}, {&dq, &dm, &dv, &dt, &ds}, opt);
            const auto t1 = std::chrono::steady_clock::now();
            if (r >= warm) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          }
          const double grads_mib = grads ? 5.0 * B * D * 4 / 1048576.0 : 0.0;
          Timing tm{B, D, mbvr::precision_name(p), grads ? "fwd+bwd" : "fwd", version, median(ms),
                    session.workspace_bytes() / 1048576.0 + grads_mib};
          const double gemms = grads ? 16 : 4;
          std::printf("bench B=%-7lld D=%lld %-5s v%d %-8s %9.2f ms  %6.1f TFLOP/s (%g products)  extra %.0f MiB\n",
                      static_cast<long long>(B), static_cast<long long>(D), tm.precision.c_str(), version,
                      tm.mode.c_str(), tm.ms, gemms * 2.0 * B * B * D / (tm.ms * 1e9), gemms, tm.extra_mib);
          std::fflush(stdout);
          all.push_back(tm);
        }
      }
    }
    session.release();
  }
  // The host API end to end once (upload, compute, download) at the largest regular B.
  {
    const int64_t B = batches.back();
    Case c;
    c.B = B, c.D = D, c.seed = 98, c.corr = 0.3;
    const Data d = make_data(c);
    set_version(0);
    vector<double> ms;
    for (int r = 0; r < 3; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      run_core(c, d, Backend::Cuda, Precision::Tf32);
      const auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    Timing tm{B, D, "tf32", "host-api", 0, median(ms), 0};
    std::printf("bench B=%-7lld D=%lld tf32  host API (upload + loss + download, pageable) %.2f ms\n",
                static_cast<long long>(B), static_cast<long long>(D), tm.ms);
    all.push_back(tm);
  }
  set_version(0);
  return all;
}

void write_json(const std::string& path, const vector<Timing>& t) {
  std::ofstream f(path);
  f << "[\n";
  for (size_t i = 0; i < t.size(); ++i)
    f << "  {\"B\": " << t[i].B << ", \"D\": " << t[i].D << ", \"precision\": \"" << t[i].precision
      << "\", \"mode\": \"" << t[i].mode << "\", \"version\": " << t[i].version << ", \"ms\": " << t[i].ms
      << ", \"extra_mib\": " << t[i].extra_mib << "}" << (i + 1 < t.size() ? ",\n" : "\n");
  f << "]\n";
}

// ---------------------------------------------------------------------------
// --io DIR: inputs from files (written by scripts/torch_reference.py), outputs to files.

int run_io(const std::string& dir) {
  const mbvr::ref64::CaseFile file = mbvr::ref64::read_case(dir);
  const mbvr::ref64::Options& o = file.options;
  Case c;
  c.B = o.B, c.D = o.D, c.K = o.K, c.tau = o.tau, c.alpha = o.alpha, c.beta = o.beta, c.gamma = o.gamma;
  c.normalize = o.normalize, c.margin_mode = file.margin_mode, c.margin = o.margin;
  c.labels = !file.inputs.labels.empty();
  Backend backend = Backend::Cuda;
  Precision p = Precision::Tf32;
  if (file.precision == "cpu") backend = Backend::Cpu, p = Precision::Fp32;
  else if (file.precision == "fp32") p = Precision::Fp32;
  else if (file.precision == "bf16") p = Precision::Bf16;
  const RunOut r = run_core(c, file.inputs, backend, p);
  std::ofstream s(dir + "/out_scalars.txt");
  s.precision(17);
  s << "loss " << r.out.loss << "\nqm " << r.out.terms.qm << "\nmq " << r.out.terms.mq << "\nv " << r.out.terms.v
    << "\nt " << r.out.terms.t << "\nms " << r.out.terms.ms << "\ndtau " << r.out.d_temperature << "\n";
  for (int t = 0; t < 5; ++t)
    if (!r.g[t].empty())
      mbvr::ref64::write_bin(dir + "/out_" + kGradNames[t] + ".f32", r.g[t].data(), r.g[t].size());
  return 0;
}

// ---------------------------------------------------------------------------

int main(int argc, char** argv) {
  bool check = true, bench = true, small = false, big = false, cpu_only = false;
  std::string json, io;
  vector<int64_t> batches = {4096, 32768};
  vector<int> versions = {1, 2};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    auto list = [](const std::string& s) {
      vector<int64_t> v;
      std::stringstream ss(s);
      std::string item;
      while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
      return v;
    };
    if (a == "--check") bench = false;
    else if (a == "--small") small = true, bench = false;
    else if (a == "--bench") check = false, batches = list(next());
    else if (a == "--big") big = true;
    else if (a == "--cpu-only") cpu_only = true;
    else if (a == "--json") json = next();
    else if (a == "--io") io = next();
    else if (a == "--versions") {
      versions.clear();
      for (int64_t v : list(next())) versions.push_back(static_cast<int>(v));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    if (!io.empty()) return run_io(io);  // precision cpu needs no GPU
    if (cpu_only) {
      run_suite(false, true);
      std::printf("%d failure(s)\n", g_failures);
      return g_failures == 0 ? 0 : 1;
    }
    const mbvr::CudaInfo info = mbvr::cuda_info();
    if (!info.available) {
      std::printf("CUDA unavailable: %s\n", info.reason.c_str());
      return 1;
    }
    for (const auto& dev : info.devices)
      std::printf("device %d: %s (sm_%d%d, %.0f GiB)\n", dev.index, dev.name.c_str(), dev.compute_major,
                  dev.compute_minor, dev.total_memory / 1073741824.0);
    if (check) {
      run_suite(small);
      if (!small) run_api_checks();
      std::printf("%d failure(s)\n", g_failures);
    }
    if (bench) {
      const vector<Timing> t = run_bench(batches, versions, big);
      if (!json.empty()) write_json(json, t);
    }
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  return g_failures == 0 ? 0 : 1;
}
