// RateLimitedLog's counting.
#include "core/rate_limited_log.h"

#include <cmath>

namespace enoki::core {

std::optional<std::string> RateLimitedLog::Add(TimePoint now, const std::string& line) {
  if (logged_ && now - last_ < interval_) {
    ++held_;
    return std::nullopt;
  }
  std::string out = line;
  if (held_ > 0) {
    double seconds = std::chrono::duration<double>(now - last_).count();
    out += " (" + std::to_string(held_ + 1) + " times in the last " +
           std::to_string(std::llround(seconds)) + " s)";
  }
  logged_ = true;
  last_ = now;
  held_ = 0;
  return out;
}

}  // namespace enoki::core
