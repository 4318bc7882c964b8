// ISO 8601 times from strftime, with the milliseconds put in before the offset.
#include "adapters/log_time.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace enoki::adapters {

std::string FormatWallTime(int64_t wall_us, bool utc) {
  int64_t seconds = wall_us / 1000000;
  int64_t micros = wall_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --seconds;
  }
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (utc) {
    ::gmtime_r(&t, &tm);
  } else {
    ::localtime_r(&t, &tm);
  }
  char date[32];
  char offset[8];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::strftime(offset, sizeof offset, "%z", &tm);  // +0100
  std::string z(offset);
  if (z.size() == 5) z.insert(3, ":");  // +01:00
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03d", static_cast<int>(micros / 1000));
  return std::string(date) + millis + z;
}

std::string ReadableFunctionLogLine(const std::string& line, bool utc) {
  if (line.empty() || line[0] < '0' || line[0] > '9') return line;
  int64_t wall_us = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), wall_us);
  size_t digits = static_cast<size_t>(end - line.data());
  if (ec != std::errc() || line.compare(digits, 2, " #") != 0) return line;
  return FormatWallTime(wall_us, utc) + line.substr(digits);
}

}  // namespace enoki::adapters
