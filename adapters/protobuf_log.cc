// libprotobuf's log lines through spdlog, rate-limited.
#include "adapters/protobuf_log.h"

#include <chrono>
#include <mutex>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "adapters/zap.h"

namespace enoki::adapters {
namespace {

void OnProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                   const std::string& message) {
  std::string text =
      "protobuf (" + std::string(file) + ":" + std::to_string(line) + "): " + message;
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("{}", text);  // protobuf aborts after this
    return;
  }
  // Any thread may parse (the HTTP gateway's, a client's), hence the lock; the clock is the
  // steady clock, as the event loop's.
  static std::mutex mutex;
  static core::RateLimitedLog log;
  std::lock_guard lock(mutex);
  WarnLimited(log,
              core::TimePoint(std::chrono::duration_cast<core::Duration>(
                  std::chrono::steady_clock::now().time_since_epoch())),
              text);
}

}  // namespace

void RouteProtobufLog() { google::protobuf::SetLogHandler(&OnProtobufLog); }

}  // namespace enoki::adapters
