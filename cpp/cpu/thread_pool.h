// A small process-wide pool of worker threads for the CPU backend.
//
// parallel_for(workers, n, fn) runs fn(item, worker) for every item in [0, n) using at
// most `workers` threads (the caller is worker 0) and returns when all are done. Items
// are handed out dynamically, so WHICH thread runs an item varies from run to run; the
// kernels are written so that this never changes a result: each item owns its outputs
// and reduces in an order fixed by item indices. `worker` only selects scratch memory.
//
// One job runs at a time (a mutex serialises concurrent callers, e.g. several
// AsyncWorkers): each job already uses every core. The pool is never destroyed, so a
// process may exit while threads sleep in it.
#pragma once

#include <cstdint>
#include <functional>

namespace mbvr::cpu {

using ParallelBody = std::function<void(int64_t item, int worker)>;

void parallel_for(int workers, int64_t n, const ParallelBody& fn);

}  // namespace mbvr::cpu
