// One loss call on disk: the folder format shared by scripts/torch_reference.py (writes
// cases), check_kernels --io (runs the addon's core on them), reference64_main and
// scripts/mbvr_torch.py (evaluate them in float64), and test/transcriptions.test.ts.
//
//   meta.txt        one "key value" per line: B, D, K, tau, alpha, beta, gamma,
//                   normalize (0/1), labels (0/1), margin_mode (0 none, 1 one margin for
//                   every row, 2 one per row), margin (margin_mode 1's value, default 0.2),
//                   precision (check_kernels --io only: cpu, fp32, tf32, bf16). Unknown keys
//                   are skipped; numbers are written so that they read back exactly.
//   query.f32, fused.f32, visual.f32, text.f32   B x D float32, row-major, native byte order
//   shuffled.f32    B x K x D float32
//   labels.i32      B int32, when labels is 1
//   margin.f32      B float32, when margin_mode is 2
//
// A float64 evaluator writes <prefix>_scalars.txt ("name value" lines: loss qm mq v t ms
// dtau, 17 significant digits) and <prefix>_d_query.f64 ... <prefix>_d_shuffled.f64.
#pragma once

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "reference64.h"

namespace mbvr::ref64 {

const char* const kGradNames[5] = {"d_query", "d_fused", "d_visual", "d_text", "d_shuffled"};

struct CaseFile {
  Options options;
  Inputs inputs;
  int margin_mode = 0;
  std::string precision = "tf32";
};

template <class T>
std::vector<T> read_bin(const std::string& path, size_t n) {
  std::vector<T> v(n);
  std::ifstream f(path, std::ios::binary);
  if (!f || !f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T))))
    throw std::runtime_error("cannot read " + std::to_string(n) + " values from " + path);
  return v;
}

template <class T>
void write_bin(const std::string& path, const T* x, size_t n) {
  std::ofstream f(path, std::ios::binary);
  if (!f || !f.write(reinterpret_cast<const char*>(x), static_cast<std::streamsize>(n * sizeof(T))))
    throw std::runtime_error("cannot write " + path);
}

inline CaseFile read_case(const std::string& dir) {
  std::ifstream meta(dir + "/meta.txt");
  if (!meta) throw std::runtime_error("no " + dir + "/meta.txt");
  CaseFile c;
  Options& o = c.options;
  o.margin = 0.2;
  std::string key;
  int labels = 0;
  while (meta >> key) {
    if (key == "B") meta >> o.B;
    else if (key == "D") meta >> o.D;
    else if (key == "K") meta >> o.K;
    else if (key == "tau") meta >> o.tau;
    else if (key == "alpha") meta >> o.alpha;
    else if (key == "beta") meta >> o.beta;
    else if (key == "gamma") meta >> o.gamma;
    else if (key == "normalize") meta >> o.normalize;
    else if (key == "labels") meta >> labels;
    else if (key == "margin_mode") meta >> c.margin_mode;
    else if (key == "margin") meta >> o.margin;
    else if (key == "precision") meta >> c.precision;
    else meta >> key;  // unknown: skip its value
    if (!meta) throw std::runtime_error("bad value for " + key + " in " + dir + "/meta.txt");
  }
  if (o.B < 1 || o.D < 1 || o.K < 1) throw std::runtime_error(dir + "/meta.txt: B, D and K must be >= 1");
  if (c.margin_mode != 1) o.margin = 0.0;
  Inputs& x = c.inputs;
  const size_t n = static_cast<size_t>(o.B * o.D);
  x.q = read_bin<float>(dir + "/query.f32", n);
  x.m = read_bin<float>(dir + "/fused.f32", n);
  x.v = read_bin<float>(dir + "/visual.f32", n);
  x.t = read_bin<float>(dir + "/text.f32", n);
  x.s = read_bin<float>(dir + "/shuffled.f32", n * o.K);
  if (labels) x.labels = read_bin<int32_t>(dir + "/labels.i32", o.B);
  if (c.margin_mode == 2) x.margin = read_bin<float>(dir + "/margin.f32", o.B);
  return c;
}

inline void write_result(const std::string& dir, const std::string& prefix, const Result& r) {
  const std::string path = dir + "/" + prefix + "_scalars.txt";
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + path);
  std::fprintf(f, "loss %.17g\nqm %.17g\nmq %.17g\nv %.17g\nt %.17g\nms %.17g\ndtau %.17g\n", r.loss, r.qm, r.mq,
               r.v, r.t, r.ms, r.dtau);
  std::fclose(f);
  for (int t = 0; t < 5; ++t)
    if (!r.g[t].empty()) write_bin(dir + "/" + prefix + "_" + kGradNames[t] + ".f64", r.g[t].data(), r.g[t].size());
}

}  // namespace mbvr::ref64
