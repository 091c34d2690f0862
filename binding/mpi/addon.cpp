// The Node-API face of the MPI addon (mbvr_mpi.node, loaded by src/mpi.ts): one
// registration table, the jobs the JS thread hands to the communication thread
// (comm_thread.h), and their way back to JS.
//
// Way back: an async job settles its promise on the JS thread through one thread-safe
// function, ref'd only while async jobs are pending (an idle communicator keeps no
// process alive); a sync job's caller blocks on a future until the communication thread
// has run it. Both go through the same queue, so sync and async calls keep program order.
//
// Exit: src/mpi.ts calls onExit(code, busy) from process.on('exit'). Code 0 with no collective
// in flight: MPI_Finalize on the communication thread (after every queued job), then
// join. Any other code, or collectives still in flight: MPI_Abort, so that the whole job
// goes down instead of the other ranks waiting forever.
#include <napi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <new>
#include <string>

#include "collective.h"
#include "comm_thread.h"
#include "js_arrays.h"
#include "world.h"

namespace mbvr::mpi {
namespace {

void deliver(Napi::Env env, Napi::Function, std::nullptr_t*, std::shared_ptr<Job>* box);
using Delivery = Napi::TypedThreadSafeFunction<std::nullptr_t, std::shared_ptr<Job>, deliver>;

enum class Phase { Idle, Starting, Ready, Finalizing, Done };

// What the JS thread knows. One per process, like MPI: the first environment to call
// start() owns it (src/mpi.ts allows only the main thread). Never destroyed: the
// communication thread may use `delivery` until it is joined.
struct State {
  napi_env env = nullptr;
  Delivery delivery;
  int pending = 0;  // async jobs not yet settled; `delivery` is ref'd while > 0
  Phase phase = Phase::Idle;
  std::string failure;  // why MPI is not running, once phase is Done
  bool started = false;  // MPI_Init_thread succeeded: rank and size are known
  int rank = 0;
  int size = 1;
};

State& state() {
  static State* const s = new State();
  return *s;
}

Napi::Error comm_error(Napi::Env env, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  if (state().started) error.Set("rank", Napi::Number::New(env, state().rank));
  return error;
}

// ---- jobs ------------------------------------------------------------------------------

class JsJob : public Job {
 public:
  explicit JsJob(bool sync) : sync_(sync) {}

  // On the JS thread, once the job ran: state changes, then the value to return.
  virtual void on_js_thread() {}
  virtual Napi::Value result(Napi::Env env) = 0;

  void finish(std::shared_ptr<Job> self) override {
    if (sync_) {
      done_.set_value();
      return;
    }
    auto* box = new std::shared_ptr<Job>(std::move(self));
    // Not napi_ok only while the environment is torn down: nobody is left to tell.
    if (state().delivery.NonBlockingCall(box) != napi_ok) delete box;
  }

  napi_deferred deferred = nullptr;  // async
  std::future<void> done() { return done_.get_future(); }

 private:
  bool sync_;
  std::promise<void> done_;  // sync
};

class StartJob : public JsJob {
 public:
  StartJob() : JsJob(false) {}
  void run(World& world) override {
    init_world(world);
    world_ = world;
  }
  void on_js_thread() override {
    State& s = state();
    // The process may have exited (and finalized) before this was delivered: the
    // environment's teardown still delivers it, and MPI must stay finalized.
    if (s.phase != Phase::Starting) return;
    if (failed) {
      s.phase = Phase::Done;
      s.failure = error;
      return;
    }
    s.phase = Phase::Ready;
    s.started = true;
    s.rank = world_.rank;
    s.size = world_.size;
  }
  Napi::Value result(Napi::Env env) override {
    Napi::Object info = Napi::Object::New(env);
    info.Set("rank", world_.rank);
    info.Set("size", world_.size);
    info.Set("library", world_.library);
    info.Set("threadLevel", thread_level_name(world_.thread_level));
    return info;
  }

 private:
  World world_;
};

class CollectiveJob : public JsJob {
 public:
  explicit CollectiveJob(bool sync) : JsJob(sync) {}
  void run(World& world) override { run_collective(call, world); }
  Napi::Value result(Napi::Env env) override {
    if (call.kind == Kind::Barrier) return env.Undefined();
    return to_typed_array(env, call.dtype, std::move(call.output), call.output_length);
  }
  Collective call;
};

// A call whose arguments were rejected on this rank: it runs only the agreement
// exchange, where it makes the other ranks' matching call fail with its message. Its own
// caller already has its TypeError/RangeError, so nothing is delivered.
class RejectedJob : public Job {
 public:
  RejectedJob(Kind kind, std::string message) {
    call.kind = kind;
    call.invalid = message.empty() ? std::string("invalid arguments") : std::move(message);
  }
  void run(World& world) override { run_collective(call, world); }
  void finish(std::shared_ptr<Job>) override {}
  Collective call;
};

class FinalizeJob : public JsJob {
 public:
  explicit FinalizeJob(bool sync) : JsJob(sync) {}
  void run(World& world) override { finalize_world(world); }
  void on_js_thread() override {
    state().phase = Phase::Done;
    state().failure = "MPI was finalized in this process (comm.finalize() or the process's exit)";
  }
  Napi::Value result(Napi::Env env) override { return env.Undefined(); }
};

// The thread-safe function's callback, on the JS thread: settles an async job's promise.
void deliver(Napi::Env env, Napi::Function, std::nullptr_t*, std::shared_ptr<Job>* box) {
  std::unique_ptr<std::shared_ptr<Job>> owned(box);
  if (env == nullptr) return;  // the environment is going away
  auto& job = static_cast<JsJob&>(**owned);
  State& s = state();
  if (--s.pending == 0) s.delivery.Unref(env);
  Napi::HandleScope scope(env);
  job.on_js_thread();
  bool ok = !job.failed;
  napi_value outcome;
  try {
    outcome = ok ? job.result(env) : comm_error(env, job.error).Value();
  } catch (const Napi::Error& e) {
    ok = false;
    outcome = e.Value();
  }
  if (ok)
    napi_resolve_deferred(env, job.deferred, outcome);
  else
    napi_reject_deferred(env, job.deferred, outcome);
}

void submit(Napi::Env env, std::shared_ptr<Job> job) {
  try {
    CommThread::instance().submit(std::move(job));
  } catch (const std::exception& e) {  // closed: MPI was finalized
    throw comm_error(env, std::string("mbvr/mpi: ") + e.what());
  }
}

// Queues an async job; its promise settles in deliver(). A job that cannot be queued
// (MPI was finalized) rejects at once.
Napi::Value submit_async(Napi::Env env, std::shared_ptr<JsJob> job) {
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &job->deferred, &promise), Napi::Value());
  try {
    submit(env, job);
  } catch (const Napi::Error& e) {
    napi_reject_deferred(env, job->deferred, e.Value());
    return Napi::Value(env, promise);
  }
  State& s = state();
  if (s.pending++ == 0) s.delivery.Ref(env);
  return Napi::Value(env, promise);
}

Napi::Value submit_sync(Napi::Env env, const std::shared_ptr<JsJob>& job) {
  std::future<void> done = job->done();
  submit(env, job);
  done.wait();
  job->on_js_thread();
  if (job->failed) throw comm_error(env, job->error);
  return job->result(env);
}

void require_owner(Napi::Env env) {
  State& s = state();
  if (s.env != nullptr && s.env != static_cast<napi_env>(env))
    throw Napi::Error::New(env, "mbvr_mpi: MPI belongs to the thread that started it (the main thread)");
}

void require_ready(Napi::Env env) {
  require_owner(env);
  State& s = state();
  if (s.phase == Phase::Ready) return;
  if (s.phase == Phase::Idle || s.phase == Phase::Starting)
    throw Napi::Error::New(env, "mbvr_mpi: MPI is not started; await start() first");
  throw comm_error(env, "mbvr/mpi: MPI is not running: " +
                            (s.phase == Phase::Finalizing ? std::string("comm.finalize() was called") : s.failure));
}

// Finalizes MPI (after every queued job) and ends the communication thread. JS thread;
// runs at exit, so it never throws.
void shutdown() {
  State& s = state();
  if (s.phase == Phase::Idle) return;
  if (s.phase == Phase::Starting || s.phase == Phase::Ready) {
    s.phase = Phase::Finalizing;
    auto job = std::make_shared<FinalizeJob>(true);
    std::future<void> done = job->done();
    try {
      CommThread::instance().submit(job);
      done.wait();
    } catch (const std::exception&) {
      // already closed: MPI_Finalize is queued or done
    }
  }
  CommThread::instance().close_and_join();
  s.phase = Phase::Done;
}

void on_environment_cleanup(void*) {
  // Normally onExit() has already finalized; this covers an environment torn down
  // without a process 'exit' event.
  shutdown();
}

// ---- reading a call --------------------------------------------------------------------

Kind kind_argument(Napi::Env env, Napi::Value value) {
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  for (Kind k : {Kind::AllGather, Kind::AllReduce, Kind::ReduceScatter, Kind::Broadcast, Kind::Barrier})
    if (name == kind_name(k)) return k;
  throw Napi::TypeError::New(env, "mbvr_mpi: unknown collective");
}

// collective(kind, data, opOrRoot, counts): the call as a Collective (c.kind already
// read), its input copied.
void read_call(const Napi::CallbackInfo& info, Collective& c) {
  Napi::Env env = info.Env();
  const State& s = state();
  if (c.kind == Kind::Barrier) return;
  const DataArgument data = read_data(env, info[1]);
  c.dtype = data.dtype;
  c.length = data.length;
  bool copy = true;
  switch (c.kind) {
    case Kind::AllReduce: {
      const std::string op = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
      if (op == "sum") c.param = static_cast<int64_t>(ReduceOp::Sum);
      else if (op == "max") c.param = static_cast<int64_t>(ReduceOp::Max);
      else if (op == "min") c.param = static_cast<int64_t>(ReduceOp::Min);
      else throw Napi::TypeError::New(env, "mbvr_mpi: op must be 'sum', 'max' or 'min'");
      break;
    }
    case Kind::Broadcast: {
      const double root = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
      if (!(root >= 0 && root < s.size && static_cast<int>(root) == root))
        throw Napi::RangeError::New(env, "mbvr_mpi: root must be a rank");
      c.param = static_cast<int64_t>(root);
      copy = s.rank == c.param;  // only the root's data is sent
      break;
    }
    case Kind::AllGather:
      if (!info[3].IsUndefined()) {
        c.counts = read_counts(env, info[3], s.size);
        c.has_counts = true;
        if (c.counts[s.rank] != c.length)
          throw Napi::RangeError::New(env, "mbvr_mpi: counts[rank] must be data's length");
        // Known counts: copy the input straight to its place in the result, which MPI
        // then fills in place (one copy of this rank's block fewer).
        int64_t total = 0, offset = 0;
        for (int r = 0; r < s.size; ++r) {
          if (r == s.rank) offset = total;
          total += c.counts[r];
        }
        // MPI's displacements are ints; the same counts fail alike on every rank.
        if (total > INT32_MAX) throw Napi::RangeError::New(env, "mbvr_mpi: the counts add up to more than MPI's int limit");
        const size_t size = element_size(c.dtype);
        try {
          c.output = OwnedBuffer(static_cast<size_t>(total) * size);
        } catch (const std::bad_alloc&) {
          throw Napi::Error::New(env, "mbvr/mpi: out of memory for the result");
        }
        if (c.length) std::memcpy(static_cast<char*>(c.output.data()) + offset * size, data.data, c.length * size);
        c.output_length = total;
        c.in_place = true;
        copy = false;
      }
      break;
    case Kind::ReduceScatter: {
      if (c.dtype != Dtype::Float32 && c.dtype != Dtype::Float64)
        throw Napi::TypeError::New(env, "mbvr_mpi: reduceScatter takes a Float32Array or Float64Array");
      c.counts = read_counts(env, info[3], s.size);
      c.has_counts = true;
      int64_t total = 0;
      for (int64_t n : c.counts) total += n;
      if (total != c.length) throw Napi::RangeError::New(env, "mbvr_mpi: data's length must be the sum of counts");
      break;
    }
    case Kind::Barrier:
    case Kind::Finalize: break;  // (never read from JS: kind_argument() does not name it)
  }
  if (copy) {
    try {
      c.input = OwnedBuffer::copy_of(data.data, static_cast<size_t>(c.length) * element_size(c.dtype));
    } catch (const std::bad_alloc&) {
      throw Napi::Error::New(env, "mbvr/mpi: out of memory copying the data");
    }
  }
}

// ---- exports -----------------------------------------------------------------------------

// start() -> Promise<{ rank, size, library, threadLevel }>: MPI_Init_thread on a new
// communication thread.
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_owner(env);
  State& s = state();
  if (s.phase != Phase::Idle) throw Napi::Error::New(env, "mbvr_mpi: start() was already called");
  s.env = env;
  s.delivery = Delivery::New(env, "mbvr_mpi", 0, 1);
  s.delivery.Unref(env);
  // Registered after the thread-safe function, so that it runs before that is torn down.
  NAPI_THROW_IF_FAILED(env, napi_add_env_cleanup_hook(env, on_environment_cleanup, nullptr), Napi::Value());
  CommThread::instance().start();
  s.phase = Phase::Starting;
  return submit_async(env, std::make_shared<StartJob>());
}

// Reads the call into job. Arguments that fail here (which src/mpi.ts's checks make rare:
// the memory-safety checks, out of memory for the copy) still take part in the call as a
// rejected one, so that the other ranks fail with the message instead of waiting.
void read_job(const Napi::CallbackInfo& info, CollectiveJob& job) {
  Napi::Env env = info.Env();
  require_ready(env);
  job.call.kind = kind_argument(env, info[0]);
  try {
    read_call(info, job.call);
  } catch (const Napi::Error& e) {
    submit(env, std::make_shared<RejectedJob>(job.call.kind, e.Message()));
    throw;
  }
}

Napi::Value Collective(const Napi::CallbackInfo& info) {
  auto job = std::make_shared<CollectiveJob>(false);
  read_job(info, *job);
  return submit_async(info.Env(), job);
}

Napi::Value CollectiveSync(const Napi::CallbackInfo& info) {
  auto job = std::make_shared<CollectiveJob>(true);
  read_job(info, *job);
  return submit_sync(info.Env(), job);
}

// reject(kind, message): this rank's call of `kind` had invalid arguments (src/mpi.ts
// threw for it); the call still takes part in the agreement exchange, so that it fails
// on every rank with `message` instead of leaving the other ranks waiting.
Napi::Value Reject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_ready(env);
  const Kind kind = kind_argument(env, info[0]);
  const std::string message = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  submit(env, std::make_shared<RejectedJob>(kind, message));
  return env.Undefined();
}

// finalize() -> Promise<void>: MPI_Finalize after every queued job; the thread then ends.
Napi::Value Finalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_ready(env);
  state().phase = Phase::Finalizing;
  Napi::Value promise = submit_async(env, std::make_shared<FinalizeJob>(false));
  CommThread::instance().close();
  return promise;
}

// abort(code) -> false when there is no MPI to abort; otherwise the process ends here.
Napi::Value Abort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_owner(env);
  const int code = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (state().phase == Phase::Idle) return Napi::Boolean::New(env, false);
  CommThread::instance().abort(code);
  return Napi::Boolean::New(env, false);
}

// onExit(code), from process.on('exit'): finalize on 0, MPI_Abort otherwise.
Napi::Value OnExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State& s = state();
  if (s.env != static_cast<napi_env>(env) || s.phase == Phase::Idle) return env.Undefined();
  const int code = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (code != 0) CommThread::instance().abort(code);  // returns only when MPI is not running
  const bool busy = info.Length() > 1 && info[1].ToBoolean().Value();
  if (s.pending > 0 || busy) {
    // A clean exit with collectives still in flight, or in the middle of an operation of
    // several (a data-parallel loss: src/communicator.ts hold()): the other ranks would
    // wait for this one forever, and MPI_Finalize would wait for them. End the job.
    std::fprintf(stderr, "mbvr/mpi: this rank exits (code 0) with %s still in flight\n",
                 s.pending > 0 ? "collective calls" : "a data-parallel loss");
    std::fflush(stderr);
    CommThread::instance().abort(1);
  }
  shutdown();
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("start", Napi::Function::New(env, Start, "start"));
  exports.Set("collective", Napi::Function::New(env, Collective, "collective"));
  exports.Set("collectiveSync", Napi::Function::New(env, CollectiveSync, "collectiveSync"));
  exports.Set("reject", Napi::Function::New(env, Reject, "reject"));
  exports.Set("finalize", Napi::Function::New(env, Finalize, "finalize"));
  exports.Set("abort", Napi::Function::New(env, Abort, "abort"));
  exports.Set("onExit", Napi::Function::New(env, OnExit, "onExit"));
  return exports;
}

}  // namespace
}  // namespace mbvr::mpi

static Napi::Object InitMpiAddon(Napi::Env env, Napi::Object exports) { return mbvr::mpi::Init(env, exports); }

NODE_API_MODULE(mbvr_mpi, InitMpiAddon)
