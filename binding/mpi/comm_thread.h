// The one thread that makes every MPI call of the process (MPI_Init_thread, the
// collectives, MPI_Finalize, MPI_Abort), so MPI needs only MPI_THREAD_FUNNELED.
// Jobs run one at a time in the order they were submitted: every rank submits its
// collectives in program order, so the ranks' sequences line up and none waits on a
// collective another rank has not reached yet (Horovod's background loop).
//
// A collective waits by polling MPI_Test (progress() below) rather than blocking in
// MPI: a blocking call can wait forever for a rank that died, and between two tests the
// thread notices an abort request and calls MPI_Abort itself, as FUNNELED requires.
// (MPI_Wait polls the same progress engine, so this costs no extra CPU.)
#pragma once

#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "collective.h"

namespace mbvr::mpi {

class Job {
 public:
  virtual ~Job() = default;
  // On the communication thread. A failure throws (CommError, std::bad_alloc, ...); the
  // thread records its message in `error`.
  virtual void run(World& world) = 0;
  // On the communication thread, once run() has returned or thrown: hands the outcome to
  // whoever waits for it (a promise on the JS thread, or a blocked sync call).
  virtual void finish(std::shared_ptr<Job> self) = 0;

  bool failed = false;
  std::string error;
};

class CommThread {
 public:
  // The process's thread, created on first use and never destroyed: at exit() the
  // thread may still be running (a rank that never finalized), and destroying a joinable
  // std::thread would call std::terminate.
  static CommThread& instance();

  // Starts the thread once; later calls do nothing.
  void start();
  bool running() const { return thread_.joinable(); }
  // Queues a job; throws std::logic_error once the thread was closed (after finalize).
  void submit(std::shared_ptr<Job> job);
  // Accepts no more jobs; the thread runs those queued and ends (after MPI_Finalize).
  void close();
  // close(), then waits for the thread to end.
  void close_and_join();

  // MPI_Abort(MPI_COMM_WORLD, code) on the communication thread, at once: between two
  // tests if a collective is in progress, or as soon as MPI_Init_thread returns. Returns
  // only when there is no MPI to abort (never started, or already finalized); otherwise
  // the process ends here (after 10 s without MPI_Abort taking it down: _Exit(code)).
  void abort(int code);

  // For the communication thread (progress(), abort_job()).
  int abort_code() const { return abort_code_.load(std::memory_order_relaxed); }
  [[noreturn]] void abort_now(int code);

 private:
  CommThread() = default;
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool closed_ = false;
  std::atomic<int> abort_code_{-1};
  std::atomic<bool> mpi_live_{false};  // between MPI_Init_thread and MPI_Finalize
  std::atomic<bool> ended_{false};     // the loop has returned
  World world_;
  std::thread thread_;
};

// Waits for request to complete (MPI_Test in a loop, yielding the core), calling
// MPI_Abort if an abort is requested meanwhile. Returns MPI_Test's error code.
int progress(MPI_Request* request);

// On the communication thread: prints why to stderr and aborts the whole job.
[[noreturn]] void abort_job(const std::string& why);

}  // namespace mbvr::mpi
