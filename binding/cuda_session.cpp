// The device-resident CUDA path for JavaScript (cpp/cuda/device_tensors.h):
//   CudaTensor   rows x dim floats on the GPU: upload once, download on demand
//   CudaSession  repeated losses on CudaTensors; the gradients stay on the GPU
// Host <-> device copies go through one page-locked staging buffer per session (grown
// on demand), so transfers run at full bus speed. Conversion and validation only: the
// work is in the core.
#include "cuda_session.h"

#include <memory>
#include <mutex>
#include <vector>

#include "convert.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_tensors.h"

namespace mbvr::binding {
namespace {

void require_cuda(Napi::Env env) {
  const CudaInfo info = cuda_info();
  if (!info.available) throw to_js_error(env, ErrorKind::Generic, "The CUDA backend is unavailable: " + info.reason);
}

// Page-locked staging memory shared by the tensors of this process, grown on demand.
class Staging {
 public:
  template <class Fn>
  void with(int64_t floats, Fn fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (buffer_.size() < floats) buffer_ = cuda::PinnedBuffer(floats);
    fn(buffer_.data());
  }

 private:
  std::mutex mutex_;
  cuda::PinnedBuffer buffer_;
};

Staging& staging() {
  static Staging* s = new Staging();  // never destroyed: may be in use at exit
  return *s;
}

}  // namespace

// ---------------------------------------------------------------------------
// CudaTensor

Napi::FunctionReference* CudaTensor::constructor = nullptr;

Napi::Function CudaTensor::Define(Napi::Env env) {
  Napi::Function f = DefineClass(env, "CudaTensor",
                                 {InstanceMethod("upload", &CudaTensor::Upload),
                                  InstanceMethod("download", &CudaTensor::Download),
                                  InstanceMethod("dispose", &CudaTensor::Dispose),
                                  InstanceAccessor("rows", &CudaTensor::Rows, nullptr),
                                  InstanceAccessor("dim", &CudaTensor::Dim, nullptr),
                                  InstanceAccessor("disposed", &CudaTensor::Disposed, nullptr)});
  constructor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

// new CudaTensor(rows, dim[, data]): zero-filled, or uploaded from data. Internally,
// new CudaTensor(External<shared_ptr<DeviceMatrix>>) adopts a matrix (a gradient).
CudaTensor::CudaTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaTensor>(info) {
  Napi::Env env = info.Env();
  if (info.Length() == 1 && info[0].IsExternal()) {
    matrix_ = *info[0].As<Napi::External<std::shared_ptr<cuda::DeviceMatrix>>>().Data();
    return;
  }
  require_cuda(env);
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("rows", info[0]);
  sizes.Set("dim", info[1]);
  const int64_t rows = size_option(sizes, "rows");
  const int64_t dim = size_option(sizes, "dim");
  FloatArray data;
  if (info.Length() > 2 && !info[2].IsUndefined())
    data = float_array_of_length(env, info[2], "data", rows * dim, "rows * dim");
  guard(env, [&] {
    matrix_ = std::make_shared<cuda::DeviceMatrix>(rows, dim);
    if (data.data) upload(data.data);
  });
}

Napi::Object CudaTensor::Wrap(Napi::Env env, std::shared_ptr<cuda::DeviceMatrix> m) {
  auto handle = Napi::External<std::shared_ptr<cuda::DeviceMatrix>>::New(env, &m);
  return constructor->New({handle});  // the constructor copies the shared_ptr
}

cuda::DeviceMatrix& CudaTensor::matrix(Napi::Env env, const char* name) {
  if (!matrix_)
    throw to_js_error(env, ErrorKind::Type,
                      invalid_parameter(ErrorKind::Type, name, "a live CudaTensor", "a disposed one").what());
  return *matrix_;
}

void CudaTensor::upload(const float* host) {
  const int64_t n = matrix_->rows() * matrix_->dim();
  staging().with(n, [&](float* pinned) {
    std::copy(host, host + n, pinned);
    matrix_->upload(pinned);
  });
}

Napi::Value CudaTensor::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cuda::DeviceMatrix& m = matrix(env, "this");
  FloatArray data = float_array_of_length(env, info[0], "data", m.rows() * m.dim(), "rows * dim");
  guard(env, [&] { upload(data.data); });
  return info.This();
}

Napi::Value CudaTensor::Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cuda::DeviceMatrix& m = matrix(env, "this");
  const int64_t n = m.rows() * m.dim();
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(n));
  guard(env, [&] {
    staging().with(n, [&](float* pinned) {
      m.download(pinned);
      std::copy(pinned, pinned + n, out.Data());
    });
  });
  return out;
}

Napi::Value CudaTensor::Dispose(const Napi::CallbackInfo& info) {
  matrix_.reset();  // device memory is freed when no session call still uses it
  return info.Env().Undefined();
}

Napi::Value CudaTensor::Rows(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), matrix_ ? static_cast<double>(matrix_->rows()) : 0);
}
Napi::Value CudaTensor::Dim(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), matrix_ ? static_cast<double>(matrix_->dim()) : 0);
}
Napi::Value CudaTensor::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !matrix_); }

// ---------------------------------------------------------------------------
// CudaSession

namespace {

constexpr int kInputs = 5;
const char* const kNames[kInputs] = {"query", "fused", "visual", "text", "shuffled"};

// One call: the device matrices it reads (kept alive by shared_ptr), the gradients
// it writes, and the options as the core reads them.
struct SessionCall {
  std::shared_ptr<cuda::DeviceMatrix> inputs[kInputs];
  std::shared_ptr<cuda::DeviceMatrix> grads[kInputs];
  LossParams options;
  std::vector<float> margin;
  std::vector<int32_t> labels;
  LossOutputs out;
};

void read_session_call(const Napi::CallbackInfo& info, SessionCall& call) {
  Napi::Env env = info.Env();
  Napi::Object inputs = object_argument(info, 0, "inputs");
  Napi::Object options = object_argument(info, 1, "options");
  for (int i = 0; i < kInputs; ++i) {
    Napi::Value v = inputs.Get(kNames[i]);
    if (v.IsUndefined()) continue;
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(CudaTensor::constructor->Value()))
      throw to_js_error(env, ErrorKind::Type,
                        invalid_parameter(ErrorKind::Type, kNames[i], "a CudaTensor", "another value").what());
    CudaTensor* t = CudaTensor::Unwrap(v.As<Napi::Object>());
    t->matrix(env, kNames[i]);
    call.inputs[i] = t->shared();
  }
  if (!call.inputs[0] || !call.inputs[1])
    throw to_js_error(env, ErrorKind::Type,
                      invalid_parameter(ErrorKind::Type, call.inputs[0] ? "fused" : "query", "a CudaTensor", "nothing").what());
  const int64_t batch = call.inputs[0]->rows();
  LossParams& p = call.options;
  p.batch = batch;
  p.dim = call.inputs[0]->dim();
  loss_options(env, options, batch, p);
  // Copied: the call may run off the JS thread, and the session holds no JS references.
  if (p.margin_per_row) {
    call.margin.assign(p.margin_per_row, p.margin_per_row + batch);
    p.margin_per_row = call.margin.data();
  }
  if (p.labels) {
    call.labels.assign(p.labels, p.labels + batch);
    p.labels = call.labels.data();
  }
  if (p.grads)
    for (int i = 0; i < kInputs; ++i)
      if (call.inputs[i]) call.grads[i] = std::make_shared<cuda::DeviceMatrix>();
}

void run_session_call(cuda::LossSession& session, SessionCall& call) {
  cuda::DeviceLossInputs in{call.inputs[0].get(), call.inputs[1].get(), call.inputs[2].get(), call.inputs[3].get(),
                            call.inputs[4].get()};
  cuda::DeviceLossGrads g{call.grads[0].get(), call.grads[1].get(), call.grads[2].get(), call.grads[3].get(),
                          call.grads[4].get()};
  session.loss(call.out, in, g, call.options);
  call.out.backend_used = Backend::Cuda;
}

Napi::Object session_result(Napi::Env env, SessionCall& call) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("loss", call.out.loss);
  Napi::Object terms = Napi::Object::New(env);
  terms.Set("qm", call.out.terms.qm);
  terms.Set("mq", call.out.terms.mq);
  terms.Set("v", call.out.terms.v);
  terms.Set("t", call.out.terms.t);
  terms.Set("ms", call.out.terms.ms);
  result.Set("terms", terms);
  if (call.options.grads) {
    Napi::Object grads = Napi::Object::New(env);
    for (int i = 0; i < kInputs; ++i) {
      if (!call.grads[i]) continue;
      grads.Set(kNames[i], CudaTensor::Wrap(env, call.grads[i]));
    }
    grads.Set("temperature", call.out.d_temperature);
    result.Set("grads", grads);
  }
  result.Set("backend", "cuda");
  result.Set("precision", precision_name(call.out.precision_used));
  return result;
}

}  // namespace

struct CudaSession::State {
  std::mutex mutex;  // one call at a time per session
  cuda::LossSession session;
};

Napi::Function CudaSession::Define(Napi::Env env) {
  return DefineClass(env, "CudaSession",
                     {InstanceMethod("lossSync", &CudaSession::LossSync), InstanceMethod("loss", &CudaSession::LossAsync),
                      InstanceMethod("dispose", &CudaSession::Dispose),
                      InstanceAccessor("workspaceBytes", &CudaSession::WorkspaceBytes, nullptr)});
}

CudaSession::CudaSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaSession>(info) {
  require_cuda(info.Env());
  guard(info.Env(), [&] { state_ = std::make_shared<State>(); });
}

std::shared_ptr<CudaSession::State> CudaSession::state(Napi::Env env) {
  if (!state_) throw to_js_error(env, ErrorKind::Generic, "This CudaSession was disposed");
  return state_;
}

Napi::Value CudaSession::LossSync(const Napi::CallbackInfo& info) {
  auto st = state(info.Env());
  SessionCall call;
  read_session_call(info, call);
  guard(info.Env(), [&] {
    std::lock_guard<std::mutex> lock(st->mutex);
    run_session_call(st->session, call);
  });
  return session_result(info.Env(), call);
}

namespace {
class SessionWorker : public Napi::AsyncWorker {
 public:
  SessionWorker(Napi::Env env, std::shared_ptr<CudaSession::State> st, std::unique_ptr<SessionCall> call)
      : Napi::AsyncWorker(env, "mbvrCudaSession"), deferred_(Napi::Promise::Deferred::New(env)),
        state_(std::move(st)), call_(std::move(call)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      std::lock_guard<std::mutex> lock(state_->mutex);
      run_session_call(state_->session, *call_);
    } catch (const Error& e) {
      kind_ = e.kind;
      SetError(e.what());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(session_result(Env(), *call_));
    } catch (...) {
    }
  }
  void OnError(const Napi::Error& e) override {
    try {
      deferred_.Reject(to_js_error(Env(), kind_, e.Message()).Value());
    } catch (...) {
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<CudaSession::State> state_;
  std::unique_ptr<SessionCall> call_;
  ErrorKind kind_ = ErrorKind::Generic;
};
}  // namespace

Napi::Value CudaSession::LossAsync(const Napi::CallbackInfo& info) {
  auto st = state(info.Env());
  auto call = std::make_unique<SessionCall>();
  read_session_call(info, *call);
  auto* worker = new SessionWorker(info.Env(), st, std::move(call));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value CudaSession::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();  // freed once no queued call holds it
  return info.Env().Undefined();
}

Napi::Value CudaSession::WorkspaceBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state_ ? static_cast<double>(state_->session.workspace_bytes()) : 0);
}

}  // namespace mbvr::binding
