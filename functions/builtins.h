// The built-in native functions (docs/functions.md): the paper's microbenchmark functions and the
// BeFaaS application. Whoever assembles a node hands them to its FunctionHost.
#pragma once

#include "node/function_host.h"

namespace enoki::functions {

// Every built-in function, by handler name.
const node::NativeFunctions& Builtins();

}  // namespace enoki::functions
