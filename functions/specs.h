// What a deployment of a built-in function may say, for those who check a deployment before any
// node runs it (the scenario loader): no node header comes with it.
#pragma once

#include "core/status.h"
#include "net/proto/enoki.pb.h"

namespace enoki::functions {

// Whether `spec` (runtime native) names a built-in function and only parameters it reads; the
// error names what is wrong and what it takes.
core::Status CheckBuiltinSpec(const proto::FunctionSpec& spec);

}  // namespace enoki::functions
