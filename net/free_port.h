// Picks a TCP port on loopback that is free right now (the kernel's choice for port 0), for
// tests, the demo and emulation that start nodes on loopback. Another process may take it before
// it is used; callers that bind it report that as an error.
#pragma once

#include "core/status.h"

namespace enoki::net {

core::Result<int> FreeLoopbackPort();

}  // namespace enoki::net
