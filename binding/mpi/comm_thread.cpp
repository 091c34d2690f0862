#include "comm_thread.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace mbvr::mpi {

CommThread& CommThread::instance() {
  static CommThread* const thread = new CommThread();  // never destroyed (see header)
  return *thread;
}

void CommThread::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void CommThread::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw std::logic_error("MPI was finalized in this process");
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void CommThread::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  wake_.notify_one();
}

void CommThread::close_and_join() {
  close();
  if (thread_.joinable()) thread_.join();
}

void CommThread::loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return !queue_.empty() || closed_ || abort_code_.load() >= 0; });
      const int code = abort_code_.load();
      if (code >= 0) {
        if (mpi_live_.load()) abort_now(code);
        break;  // nothing to abort: abort() sees the thread end and returns
      }
      if (queue_.empty()) break;  // closed, and every queued job done
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job->run(world_);
    } catch (const std::bad_alloc&) {
      job->failed = true;
      job->error = "mbvr/mpi: out of memory on rank " + std::to_string(world_.rank);
    } catch (const std::exception& e) {
      job->failed = true;
      job->error = e.what();
    }
    mpi_live_.store(world_.initialized && !world_.finalized);
    Job* raw = job.get();
    raw->finish(std::move(job));
  }
  ended_.store(true);
}

void CommThread::abort(int code) {
  if (!thread_.joinable() || ended_.load()) return;
  {
    // Under the mutex, so that the thread cannot miss the wake-up between testing its
    // condition and going to sleep.
    std::lock_guard<std::mutex> lock(mutex_);
    abort_code_.store(code < 0 ? 1 : code);
  }
  wake_.notify_one();
  // The communication thread now calls MPI_Abort, which ends the process; wait for
  // that rather than return into a process exit racing with it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ended_.load()) return;  // MPI was not running: nothing to abort
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::fprintf(stderr, "mbvr/mpi: MPI_Abort did not end the process within 10 s; exiting with code %d\n", code);
  std::_Exit(code);
}

void CommThread::abort_now(int code) {
  std::fflush(stdout);
  // Said here as well as by MPI: not every MPI prints a notice, and this names the rank.
  std::fprintf(stderr, "mbvr/mpi: rank %d calls MPI_Abort(MPI_COMM_WORLD, %d) so that the whole job ends\n",
               world_.rank, code);
  std::fflush(stderr);
  // A launcher forwards a rank's output through pipes, and MPICH's Hydra stops reading
  // them once it learns of the abort: give it a moment to pass on this line (and what the
  // rank printed just before), which names the rank and says why the job ends.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; should an MPI let it, still end
}

int progress(MPI_Request* request) {
  CommThread& thread = CommThread::instance();
  for (unsigned polls = 0;; ++polls) {
    int done = 0;
    const int rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || done) return rc;
    const int code = thread.abort_code();
    if (code >= 0) thread.abort_now(code);
    // Spin briefly for small messages, then let other threads (this rank's JS thread,
    // other ranks on an oversubscribed machine) have the core between tests; a long wait
    // (another rank still computing) sleeps between tests, 0.1 ms at most, so that it does
    // not keep a core busy that a rank on the same machine computes on.
    if (polls >= 2048)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    else if (polls >= 64)
      std::this_thread::yield();
  }
}

void abort_job(const std::string& why) {
  std::fprintf(stderr, "%s\n", why.c_str());
  CommThread::instance().abort_now(1);
}

}  // namespace mbvr::mpi
