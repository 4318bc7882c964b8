// Endpoints as users write them (--node, --listen, --peer, --join, cluster files): checked and
// put in the form ZeroMQ takes before any socket sees them, so that a mistake is one clear
// sentence instead of ZeroMQ's "Invalid argument" or "Protocol not supported".
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace enoki::net {

// Where the endpoint is used: a listener may also take port 0 (any free port) and the host '*'
// (every interface).
enum class EndpointUse { kConnect, kListen };

// `text` as ZeroMQ takes it: tcp://HOST:PORT, or ipc://PATH; HOST:PORT is taken as
// tcp://HOST:PORT. INVALID_ARGUMENT, naming `what` (e.g. "--node"; empty: nothing) and the text,
// for another scheme, a missing or out-of-range port, an empty host or path, or an ipc path
// longer than a Unix socket's address holds.
core::Result<std::string> ParseEndpoint(std::string_view text, const std::string& what,
                                        EndpointUse use = EndpointUse::kConnect);

}  // namespace enoki::net
