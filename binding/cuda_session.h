// CudaTensor and CudaSession: the device-resident CUDA path (see cuda_session.cpp).
#pragma once

#include <napi.h>

#include <memory>

namespace mbvr::cuda {
class DeviceMatrix;
}

namespace mbvr::binding {

class CudaTensor : public Napi::ObjectWrap<CudaTensor> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::FunctionReference* constructor;
  // A JS CudaTensor owning (sharing) m.
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<cuda::DeviceMatrix> m);

  explicit CudaTensor(const Napi::CallbackInfo& info);
  // The matrix, or a TypeError naming `name` when disposed.
  cuda::DeviceMatrix& matrix(Napi::Env env, const char* name);
  std::shared_ptr<cuda::DeviceMatrix> shared() const { return matrix_; }

 private:
  void upload(const float* host);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Rows(const Napi::CallbackInfo& info);
  Napi::Value Dim(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  std::shared_ptr<cuda::DeviceMatrix> matrix_;
};

class CudaSession : public Napi::ObjectWrap<CudaSession> {
 public:
  struct State;
  static Napi::Function Define(Napi::Env env);
  explicit CudaSession(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<State> state(Napi::Env env);
  Napi::Value LossSync(const Napi::CallbackInfo& info);
  Napi::Value LossAsync(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value WorkspaceBytes(const Napi::CallbackInfo& info);

  std::shared_ptr<State> state_;
};

}  // namespace mbvr::binding
