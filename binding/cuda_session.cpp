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

#include "async_call.h"
#include "convert.h"
#include "cuda/cuda_backend.h"
#include "cuda/device_tensors.h"
#include "host_buffer.h"
#include "result.h"

namespace mbvr::binding {
namespace {

void require_cuda(Napi::Env env) {
  guard(env, [] { choose_backend(Backend::Cuda, Precision::Fp32, cuda_info()); });
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
  ArrayView<float> data;
  if (info.Length() > 2 && !info[2].IsUndefined())
    data = float_array_of_length(info[2], "data", checked_product(env, rows, dim, "rows * dim"));
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
  if (!matrix_) throw_bad_argument(env, ErrorKind::Type, name, "the CudaTensor was disposed");
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
  const ArrayView<float> data = float_array_of_length(info[0], "data", m.rows() * m.dim());
  guard(env, [&] { upload(data.data); });
  return info.This();
}

Napi::Value CudaTensor::Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cuda::DeviceMatrix& m = matrix(env, "this");
  const int64_t n = m.rows() * m.dim();
  return guard(env, [&] {
    FloatArray host(env, n, "a downloaded CudaTensor");
    staging().with(n, [&](float* pinned) {
      m.download(pinned);
      std::copy(pinned, pinned + n, host.data());
    });
    return host.value();
  });
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

constexpr int kInputs = kLossInputs;

// One call: the device matrices it reads (kept alive by shared_ptr), the gradients it
// writes, and the options as the core reads them (margin and labels copied).
struct SessionCall {
  std::shared_ptr<CudaSession::State> state;
  std::shared_ptr<cuda::DeviceMatrix> inputs[kInputs];
  std::shared_ptr<cuda::DeviceMatrix> grads[kInputs];
  LossParams options;
  FloatBuffer margin;
  Int32Buffer labels;
  LossOutputs out;

  void run();
  Napi::Value result(Napi::Env env) {
    Napi::Value g[kInputs];
    for (int i = 0; i < kInputs; ++i)
      if (grads[i]) g[i] = CudaTensor::Wrap(env, grads[i]);
    return loss_result(env, out, options.grads, g);
  }
};

void read_session_call(const Napi::CallbackInfo& info, SessionCall& call) {
  Napi::Env env = info.Env();
  Napi::Object inputs = object_argument(info, 0, "inputs");
  Napi::Object options = object_argument(info, 1, "options");
  for (int i = 0; i < kInputs; ++i) {
    Napi::Value v = inputs.Get(kLossInputNames[i]);
    if (v.IsUndefined()) continue;
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(CudaTensor::constructor->Value()))
      throw_bad_argument(env, ErrorKind::Type, kLossInputNames[i], "expected a CudaTensor");
    CudaTensor* t = CudaTensor::Unwrap(v.As<Napi::Object>());
    t->matrix(env, kLossInputNames[i]);
    call.inputs[i] = t->shared();
  }
  if (!call.inputs[0] || !call.inputs[1])
    throw_bad_argument(env, ErrorKind::Type, call.inputs[0] ? "fused" : "query", "expected a CudaTensor");
  const int64_t batch = call.inputs[0]->rows();
  LossParams& p = call.options;
  p.batch = batch;
  p.dim = call.inputs[0]->dim();
  const LossOptionArrays arrays = loss_options(options, batch, batch, p);
  // Copied: the call may run off the JS thread.
  if (p.margin_per_row) {
    call.margin = FloatBuffer::copy_of(arrays.margin.data, arrays.margin.length, "a copy of margin");
    p.margin_per_row = call.margin.data();
  }
  if (p.labels) {
    call.labels = Int32Buffer::copy_of(arrays.labels.data, arrays.labels.length, "a copy of labels");
    p.labels = call.labels.data();
  }
  if (p.grads)
    for (int i = 0; i < kInputs; ++i)
      if (call.inputs[i]) call.grads[i] = std::make_shared<cuda::DeviceMatrix>();
}

}  // namespace

struct CudaSession::State {
  std::mutex mutex;  // one call at a time per session
  cuda::LossSession session;
};

namespace {
void SessionCall::run() {
  std::lock_guard<std::mutex> lock(state->mutex);
  cuda::DeviceLossInputs in{inputs[0].get(), inputs[1].get(), inputs[2].get(), inputs[3].get(), inputs[4].get()};
  cuda::DeviceLossGrads g{grads[0].get(), grads[1].get(), grads[2].get(), grads[3].get(), grads[4].get()};
  state->session.loss(out, in, g, options);
  out.backend_used = Backend::Cuda;
}
}  // namespace

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
  if (!state_) throw_bad_argument(env, ErrorKind::Generic, "CudaSession", "disposed");
  return state_;
}

Napi::Value CudaSession::LossSync(const Napi::CallbackInfo& info) {
  SessionCall call;
  call.state = state(info.Env());
  guard(info.Env(), [&] { read_session_call(info, call); });
  return run_sync(info.Env(), call);
}

Napi::Value CudaSession::LossAsync(const Napi::CallbackInfo& info) {
  auto call = std::make_unique<SessionCall>();
  call->state = state(info.Env());
  guard(info.Env(), [&] { read_session_call(info, *call); });
  return run_async(info.Env(), "mbvrCudaSession", std::move(call));
}

Napi::Value CudaSession::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();  // freed once no queued call holds it
  return info.Env().Undefined();
}

Napi::Value CudaSession::WorkspaceBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state_ ? static_cast<double>(state_->session.workspace_bytes()) : 0);
}

}  // namespace mbvr::binding
