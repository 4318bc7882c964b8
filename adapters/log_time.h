// Times as logs show them: ISO 8601 with milliseconds and the offset from UTC, in local time or
// in UTC ("2026-12-04T09:05:07.161+01:00"), for the node's own log and the function logs it keeps.
#pragma once

#include <cstdint>
#include <string>

namespace enoki::adapters {

// The wall-clock time `wall_us` (microseconds since the Unix epoch) in ISO 8601 with milliseconds
// and the offset, in UTC (offset +00:00) or in this host's local time.
std::string FormatWallTime(int64_t wall_us, bool utc);

// A line of a function's log as a node keeps it, "WALL_US #INVOCATION TEXT" (node/
// function_context.h), with its time as FormatWallTime writes it; any other line as it is.
std::string ReadableFunctionLogLine(const std::string& line, bool utc);

// spdlog's pattern for a log line with its time as FormatWallTime writes it, its level and text.
inline constexpr const char* kLogPattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v";

}  // namespace enoki::adapters
