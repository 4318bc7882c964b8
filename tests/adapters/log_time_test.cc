// Times in logs: ISO 8601 with milliseconds and the offset, in UTC or local time; a function's log
// line gets its time so.
#include "adapters/log_time.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace enoki::adapters {
namespace {

TEST(LogTimeTest, Iso8601WithMillisecondsAndTheOffset) {
  EXPECT_EQ(FormatWallTime(1796251507161699, true), "2026-12-02T22:45:07.161+00:00");
  EXPECT_EQ(FormatWallTime(0, true), "1970-01-01T00:00:00.000+00:00");
  // Local time: this process's zone, set here.
  ::setenv("TZ", "CET-1", 1);
  ::tzset();
  EXPECT_EQ(FormatWallTime(1796251507161699, false), "2026-12-02T23:45:07.161+01:00");
  ::unsetenv("TZ");
  ::tzset();
}

TEST(LogTimeTest, AFunctionsLogLineGetsItsTime) {
  EXPECT_EQ(ReadableFunctionLogLine("1796251507161699 #0 deployed native:echo on keygroup k", true),
            "2026-12-02T22:45:07.161+00:00 #0 deployed native:echo on keygroup k");
  // Anything else is left as it is.
  EXPECT_EQ(ReadableFunctionLogLine("no time here", true), "no time here");
  EXPECT_EQ(ReadableFunctionLogLine("12345", true), "12345");
  EXPECT_EQ(ReadableFunctionLogLine("99999999999999999999 #1 x", true),
            "99999999999999999999 #1 x");  // not a time: over int64_t
  EXPECT_EQ(ReadableFunctionLogLine("-5 #1 x", true), "-5 #1 x");
}

}  // namespace
}  // namespace enoki::adapters
