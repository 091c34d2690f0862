// reference64_main DIR...: evaluates each case folder (format: case_io.h) with the
// harness's float64 reference (reference64.h) and writes DIR/ref64_scalars.txt and
// DIR/ref64_d_*.f64. Plain C++, no CUDA: test/transcriptions.test.ts builds it with
//   g++ -O2 -std=c++17 -Icpp cpp/cuda/dev/reference64_main.cpp -o reference64_main
// and compares its results with src/reference.ts.
#include <cstdio>
#include <exception>
#include <string>

#include "cuda/dev/case_io.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR...  (case folders, see cpp/cuda/dev/case_io.h)\n", argv[0]);
    return 2;
  }
  for (int a = 1; a < argc; ++a) {
    try {
      const mbvr::ref64::CaseFile c = mbvr::ref64::read_case(argv[a]);
      mbvr::ref64::write_result(argv[a], "ref64", mbvr::ref64::loss(c.options, c.inputs));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", argv[a], e.what());
      return 1;
    }
  }
  return 0;
}
