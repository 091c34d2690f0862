// The one way the binding runs work: a Job with
//   void run()                           the core's work; no JavaScript (any thread)
//   Napi::Value result(Napi::Env)        the JS result (the JavaScript thread)
// either on the calling thread (run_sync) or on a libuv worker thread behind a promise
// (run_async). Core failures become TypeError / RangeError / Error by their kind; an
// allocation failure is an Error that says out of memory.
//
// Every promise settles: a failure while the result is built rejects it too. While the
// environment shuts down (a worker thread terminated, the process exiting, with the work
// in flight) settling may be impossible: then there is nobody to tell, and nothing is
// thrown out of the callbacks - node-addon-api would otherwise terminate the process
// (NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS, set in CMakeLists.txt, covers the exceptions
// it throws itself). The Job owns everything run() reads and writes, so a worker thread
// finishing after its JavaScript objects are gone touches none of them.
//
// MBVR_TEST_FAULT=result makes result() fail, to test that the promise still rejects.
#pragma once

#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "convert.h"
#include "mbvr.h"

namespace mbvr::binding {

// The test hook of the header comment.
inline void maybe_fail_result() {
  const char* fault = std::getenv("MBVR_TEST_FAULT");
  if (fault && std::strcmp(fault, "result") == 0)
    throw Error(ErrorKind::Generic, "mbvr: test fault: building the result failed (MBVR_TEST_FAULT=result)");
}

template <class Job>
Napi::Value run_sync(Napi::Env env, Job& job) {
  guard(env, [&] { job.run(); });
  return guard(env, [&] {
    maybe_fail_result();
    return job.result(env);
  });
}

template <class Job>
class AsyncCall : public Napi::AsyncWorker {
 public:
  AsyncCall(Napi::Env env, const char* name, std::unique_ptr<Job> job)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      job_->run();
    } catch (const Error& e) {
      fail(e.kind, e.what());
    } catch (const std::bad_alloc&) {
      fail(ErrorKind::Generic, "mbvr: out of memory: an allocation failed");
    } catch (const std::exception& e) {
      fail(ErrorKind::Generic, std::string("mbvr: ") + e.what());
    } catch (...) {
      fail(ErrorKind::Generic, "mbvr: the computation failed");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      maybe_fail_result();
      deferred_.Resolve(job_->result(env));
      return;
    } catch (const Napi::Error& e) {
      reject(e.Value());
    } catch (const Error& e) {
      reject_with(e.kind, e.what());
    } catch (const std::bad_alloc&) {
      reject_with(ErrorKind::Generic, "mbvr: out of memory: an allocation failed while building the result");
    } catch (...) {
      reject_with(ErrorKind::Generic, "mbvr: building the result failed");
    }
  }

  void OnError(const Napi::Error&) override { reject_with(kind_, message_); }

 private:
  void fail(ErrorKind kind, const std::string& message) {
    kind_ = kind;
    message_ = message;
    SetError(message);
  }
  void reject_with(ErrorKind kind, const std::string& message) {
    try {
      reject(to_js_error(Env(), kind, message).Value());
    } catch (...) {  // the environment is going away: nobody is waiting
    }
  }
  void reject(Napi::Value error) {
    try {
      deferred_.Reject(error);
    } catch (...) {  // as above
    }
  }

  Napi::Promise::Deferred deferred_;
  std::unique_ptr<Job> job_;
  ErrorKind kind_ = ErrorKind::Generic;
  std::string message_;
};

// Queues the job; the promise settles with its result or its error.
template <class Job>
Napi::Promise run_async(Napi::Env env, const char* name, std::unique_ptr<Job> job) {
  auto* call = new AsyncCall<Job>(env, name, std::move(job));  // deletes itself when done
  Napi::Promise promise = call->promise();
  call->Queue();
  return promise;
}

}  // namespace mbvr::binding
