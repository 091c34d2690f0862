// A standalone driver for the compute core, without Node (a ctest test: cmake/tests.cmake),
// run by `npm test` (test/core.test.ts) and, built with AddressSanitizer, UBSan and
// LeakSanitizer, by scripts/test-sanitizers.sh. It exercises every entry point
// on random shapes and options and every error path, and checks the properties that need
// no oracle (finite outputs, identical bits for any thread count, errors thrown as
// mbvr::Error). Exit status 0 = clean; the sanitizers abort on any memory error or leak.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../mbvr.h"

namespace {

int failures = 0;

void check(bool ok, const char* what, int n) {
  if (!ok) {
    std::fprintf(stderr, "FAIL case %d: %s\n", n, what);
    ++failures;
  }
}

struct Case {
  int64_t batch, dim, k;
  std::vector<float> query, fused, visual, text, shuffled, margin;
  std::vector<int32_t> labels;
};

Case random_case(std::mt19937& rng, int64_t batch, int64_t dim, int64_t k) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Case c{batch, dim, k, {}, {}, {}, {}, {}, {}, {}};
  for (auto* v : {&c.query, &c.fused, &c.visual, &c.text}) {
    v->resize(batch * dim);
    for (float& x : *v) x = normal(rng);
  }
  c.shuffled.resize(batch * k * dim);
  for (float& x : c.shuffled) x = normal(rng);
  c.margin.resize(batch);
  for (float& x : c.margin) x = 0.1f * std::abs(normal(rng));
  c.labels.resize(batch);
  for (int32_t& l : c.labels) l = static_cast<int32_t>(rng() % (batch / 2 + 1));
  return c;
}

struct Run {
  mbvr::LossOutputs out;
  std::vector<float> dq, dm, dv, dt, ds;
};

Run run(const Case& c, int threads, bool labels, bool margin, bool normalize, double tau) {
  mbvr::LossParams p;
  p.query = c.query.data();
  p.fused = c.fused.data();
  p.visual = c.visual.data();
  p.text = c.text.data();
  p.shuffled = c.shuffled.data();
  p.batch = c.batch;
  p.dim = c.dim;
  p.k = c.k;
  p.temperature = tau;
  p.labels = labels ? c.labels.data() : nullptr;
  p.margin_per_row = margin ? c.margin.data() : nullptr;
  p.normalize = normalize;
  p.backend = mbvr::Backend::Cpu;
  p.threads = threads;
  Run r;
  r.dq.resize(c.query.size());
  r.dm.resize(c.fused.size());
  r.dv.resize(c.visual.size());
  r.dt.resize(c.text.size());
  r.ds.resize(c.shuffled.size());
  r.out.d_query = r.dq.data();
  r.out.d_fused = r.dm.data();
  r.out.d_visual = r.dv.data();
  r.out.d_text = r.dt.data();
  r.out.d_shuffled = r.ds.data();
  mbvr::loss(r.out, p);
  return r;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

template <class Fn>
bool throws_mbvr_error(Fn fn, mbvr::ErrorKind kind) {
  try {
    fn();
  } catch (const mbvr::Error& e) {
    return e.kind == kind;
  }
  return false;
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  for (int n = 0; n < 40; ++n) {
    const int64_t batch = 1 + rng() % 300, dim = 1 + rng() % 70, k = 1 + rng() % 3;
    const Case c = random_case(rng, batch, dim, k);
    const bool labels = rng() % 2, margin = rng() % 2, normalize = rng() % 4 != 0;
    const double tau = 0.01 + (rng() % 1000) / 1000.0;
    const Run a = run(c, 1, labels, margin, normalize, tau);
    const Run b = run(c, 3, labels, margin, normalize, tau);
    check(std::isfinite(a.out.loss) && std::isfinite(a.out.d_temperature), "finite scalars", n);
    check(all_finite(a.dq) && all_finite(a.dm) && all_finite(a.dv) && all_finite(a.dt) && all_finite(a.ds),
          "finite gradients", n);
    check(a.out.loss == b.out.loss && a.out.d_temperature == b.out.d_temperature, "scalars equal across threads", n);
    check(same_bits(a.dq, b.dq) && same_bits(a.dm, b.dm) && same_bits(a.dv, b.dv) && same_bits(a.dt, b.dt) &&
              same_bits(a.ds, b.ds),
          "gradients equal across threads", n);
  }

  // Error paths: thrown as mbvr::Error of the right kind, nothing leaked.
  Case c = random_case(rng, 8, 4, 2);
  c.query[3] = NAN;
  check(throws_mbvr_error([&] { run(c, 2, false, false, true, 0.05); }, mbvr::ErrorKind::Range), "NaN refused", -1);
  c.query[3] = 0.5f;
  check(throws_mbvr_error([&] { run(c, 2, false, false, true, -1.0); }, mbvr::ErrorKind::Range), "tau refused", -1);
  check(throws_mbvr_error(
            [&] {
              mbvr::LossParams p;
              p.batch = int64_t(1) << 40;
              p.dim = int64_t(1) << 40;
              mbvr::LossOutputs o;
              mbvr::loss(o, p);
            },
            mbvr::ErrorKind::Range),
        "overflowing sizes refused", -1);

  // similarity and shuffled_logits.
  std::vector<float> sim(8 * 8), logits(8 * 2);
  mbvr::SimilarityParams sp;
  sp.a = c.query.data();
  sp.b = c.fused.data();
  sp.rows = sp.cols = 8;
  sp.dim = 4;
  mbvr::similarity(sim.data(), sp);
  mbvr::ShuffledLogitsParams lp;
  lp.query = c.query.data();
  lp.shuffled = c.shuffled.data();
  lp.batch = 8;
  lp.dim = 4;
  lp.k = 2;
  mbvr::shuffled_logits(logits.data(), lp);
  check(all_finite(sim) && all_finite(logits), "similarity finite", -1);

  std::printf("%s: core_check, %d failure(s)\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
