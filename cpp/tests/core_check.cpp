// A standalone driver for the compute core, without Node (a ctest test: cmake/tests.cmake),
// run by `npm test` (test/core.test.ts) and, built with AddressSanitizer, UBSan and
// LeakSanitizer, by scripts/test-sanitizers.sh. It exercises every entry point
// on random shapes and options and every error path, and checks the properties that need
// no oracle (finite outputs, identical bits for any thread count, errors thrown as
// mbvr::Error). Exit status 0 = clean; the sanitizers abort on any memory error or leak.
#include <algorithm>
#include <cmath>
#include <memory>
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

double relative(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Rows [0, split) and [split, B) as two shards, merged as ranks merge them: column
// maxima, sums rescaled to them and added, every positive; document gradients added.
bool sharded_matches(const Case& c, const Run& whole, int64_t split, bool labels, bool margin, bool normalize) {
  const int64_t B = c.batch, D = c.dim, K = c.k;
  const int64_t row0[2] = {0, split}, rows[2] = {split, B - split};
  std::vector<std::unique_ptr<mbvr::LossShard>> shards;
  std::vector<mbvr::LossParams> params(2);
  mbvr::ColumnStats partial[2];
  for (int s = 0; s < 2; ++s) {
    mbvr::LossParams& p = params[s];
    p.query = c.query.data() + row0[s] * D;
    p.shuffled = c.shuffled.data() + row0[s] * K * D;
    p.margin_per_row = margin ? c.margin.data() + row0[s] : nullptr;
    p.fused = c.fused.data();
    p.visual = c.visual.data();
    p.text = c.text.data();
    p.labels = labels ? c.labels.data() : nullptr;
    p.batch = B;
    p.dim = D;
    p.k = K;
    p.row0 = row0[s];
    p.rows = rows[s];
    p.temperature = 0.05;
    p.normalize = normalize;
    p.threads = 1 + s;
    shards.push_back(std::make_unique<mbvr::LossShard>(p));
    shards[s]->statistics(partial[s]);
  }
  mbvr::ColumnStats merged;
  merged.max.resize(B);
  merged.sum.resize(B);
  for (int64_t j = 0; j < B; ++j) {
    merged.max[j] = std::max(partial[0].max[j], partial[1].max[j]);
    for (int s = 0; s < 2; ++s)
      merged.sum[j] += partial[s].max[j] == -INFINITY ? 0.0 : partial[s].sum[j] * std::exp(partial[s].max[j] - merged.max[j]);
  }
  merged.positive = partial[0].positive;
  merged.positive.insert(merged.positive.end(), partial[1].positive.begin(), partial[1].positive.end());

  std::vector<float> dq(B * D), ds(B * K * D), dx[3][2];
  mbvr::LossSums sums[2];
  for (int s = 0; s < 2; ++s) {
    mbvr::LossOutputs o;
    for (int t = 0; t < 3; ++t) dx[t][s].assign(B * D, 0.0f);
    o.d_query = dq.data() + row0[s] * D;
    o.d_shuffled = ds.data() + row0[s] * K * D;
    o.d_fused = dx[0][s].data();
    o.d_visual = dx[1][s].data();
    o.d_text = dx[2][s].data();
    shards[s]->gradients(o, sums[s], merged);
  }
  std::vector<float> docs[3];  // summed over the shards, then finished by their owners
  for (int t = 0; t < 3; ++t) {
    docs[t].resize(B * D);
    for (int64_t e = 0; e < B * D; ++e) docs[t][e] = dx[t][0][e] + dx[t][1][e];
  }
  for (int s = 0; s < 2; ++s)
    shards[s]->finish_documents(docs[0].data() + row0[s] * D, docs[1].data() + row0[s] * D, docs[2].data() + row0[s] * D);
  mbvr::LossSums total;
  total.qm = sums[0].qm + sums[1].qm;
  total.mq = sums[0].mq + sums[1].mq;
  total.v = sums[0].v + sums[1].v;
  total.t = sums[0].t + sums[1].t;
  total.ms = sums[0].ms + sums[1].ms;
  total.gz = sums[0].gz + sums[1].gz;
  mbvr::LossOutputs out;
  mbvr::finish_scalars(out, total, params[0]);
  const bool ok = std::abs(out.loss - whole.out.loss) <= 1e-5 * std::abs(whole.out.loss) &&
                  std::abs(out.d_temperature - whole.out.d_temperature) <= 1e-5 * std::max(1.0, std::abs(whole.out.d_temperature)) &&
                  relative(dq, whole.dq) <= 1e-5 && relative(ds, whole.ds) <= 1e-5 && relative(docs[0], whole.dm) <= 1e-5 &&
                  relative(docs[1], whole.dv) <= 1e-5 && relative(docs[2], whole.dt) <= 1e-5;
  if (!ok) std::fprintf(stderr, "split %lld of %lld: loss %.9g vs %.9g\n", (long long)split, (long long)B, out.loss, whole.out.loss);
  return ok;
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

  // The data-parallel decomposition (docs/math.md §6), two shards merged by hand: the same
  // loss and gradients as the whole batch in one call.
  for (int n = 0; n < 8; ++n) {
    const int64_t batch = 2 + rng() % 120, dim = 1 + rng() % 40, k = 1 + rng() % 3;
    const Case c = random_case(rng, batch, dim, k);
    const bool labels = rng() % 2, margin = rng() % 2, normalize = rng() % 4 != 0;
    const Run whole = run(c, 2, labels, margin, normalize, 0.05);
    check(sharded_matches(c, whole, static_cast<int64_t>(rng() % (batch + 1)), labels, margin, normalize),
          "two shards equal the whole batch", n);
  }

  // Error paths (the memory-safety checks): thrown as mbvr::Error of the right kind,
  // nothing leaked. Values are the TypeScript layer's to check.
  Case c = random_case(rng, 8, 4, 2);
  check(throws_mbvr_error(
            [&] {
              mbvr::LossParams p;
              p.batch = 8;
              p.dim = 4;
              p.query = c.query.data();  // fused missing
              mbvr::LossOutputs o;
              mbvr::loss(o, p);
            },
            mbvr::ErrorKind::Type),
        "a missing input refused", -1);
  check(throws_mbvr_error([&] { run(c, 2, false, false, true, -1.0); }, mbvr::ErrorKind::Range), "tau refused", -1);
  check(throws_mbvr_error(
            [&] {
              mbvr::LossParams p;
              p.batch = 8;
              p.dim = 4;
              p.query = c.query.data();
              p.fused = c.fused.data();
              p.alpha = p.beta = p.gamma = 0;
              p.row0 = 5;
              p.rows = 4;  // beyond the batch
              mbvr::LossShard shard(p);
            },
            mbvr::ErrorKind::Range),
        "a shard outside the batch refused", -1);
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
