// backends(): what this build can run on, as facts plus a reason.
#pragma once

#include <napi.h>

namespace mbvr::binding {

Napi::Value Backends(const Napi::CallbackInfo& info);

}  // namespace mbvr::binding
