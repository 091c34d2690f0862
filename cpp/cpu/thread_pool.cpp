#include "thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace mbvr::cpu {
namespace {

class Pool {
 public:
  void run(int workers, int64_t n, const ParallelBody& fn) {
    if (n <= 0) return;
    if (workers > n) workers = static_cast<int>(n);
    if (workers <= 1) {
      for (int64_t i = 0; i < n; ++i) fn(i, 0);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    grow(workers - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &fn;
      items_ = n;
      next_.store(0);
      active_ = workers - 1;  // helpers that take part in this job
      pending_ = workers - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Starts helper threads until there are `count` of them.
  void grow(int count) {
    while (static_cast<int>(threads_.size()) < count) {
      int id = static_cast<int>(threads_.size()) + 1;
      threads_.emplace_back([this, id] { loop(id); });
      threads_.back().detach();
    }
  }

  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (id > active_) continue;  // not part of this job
      }
      work(id);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  void work(int worker) {
    for (;;) {
      int64_t item = next_.fetch_add(1);
      if (item >= items_) return;
      try {
        (*body_)(item, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  std::mutex job_mutex_;  // one job at a time
  std::mutex mutex_;
  std::mutex error_mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const ParallelBody* body_ = nullptr;
  int64_t items_ = 0;
  std::atomic<int64_t> next_{0};
  int active_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* instance = new Pool();  // intentionally leaked: see the header
  return *instance;
}

}  // namespace

void parallel_for(int workers, int64_t n, const ParallelBody& fn) { pool().run(workers, n, fn); }

}  // namespace mbvr::cpu
