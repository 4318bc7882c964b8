// Where libprotobuf's own log lines go. By default it writes each one to stderr as it happens:
// a message whose `string` field holds invalid UTF-8 fails to parse with an ERROR line, one per
// message, so a hostile client or peer sending such messages floods the log. RouteProtobufLog
// sends them through spdlog instead, rate-limited (RateLimitedLog: the first, then at most one
// line every 10 s with the count of those not logged).
#pragma once

namespace enoki::adapters {

// Installs the handler for the whole process. Protobuf does not lock its handler: call it once,
// before any other thread runs (main does).
void RouteProtobufLog();

}  // namespace enoki::adapters
