// RateLimitedLog: the lines of one kind of repeated event (a refused connection, a message from a
// node nobody knows), logged the first time at once and from then on at most once per interval,
// saying how many there were: "message from unknown node 'd' dropped (11 times in the last 10 s)".
// Pure: the caller gives the time and writes the line where it logs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/env.h"

namespace enoki::core {

class RateLimitedLog {
 public:
  explicit RateLimitedLog(Duration interval = std::chrono::seconds(10)) : interval_(interval) {}

  // One more event at `now`, described by `line`: the line to log, or nothing while the last
  // line logged is younger than the interval. A line after others were held back ends with how
  // many events it stands for and over how long.
  std::optional<std::string> Add(TimePoint now, const std::string& line);

 private:
  Duration interval_;
  TimePoint last_{};
  bool logged_ = false;
  uint64_t held_ = 0;  // events since the last line logged
};

}  // namespace enoki::core
