// RateLimitedLog: the first event's line at once, then at most one line per interval, with how
// many events it stands for.
#include "core/rate_limited_log.h"

#include <gtest/gtest.h>

namespace enoki::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RateLimitedLogTest, FirstAtOnceThenOnePerIntervalWithTheCount) {
  RateLimitedLog log(seconds(10));
  TimePoint t0{seconds(100)};
  EXPECT_EQ(log.Add(t0, "dropped"), "dropped");
  for (int i = 1; i <= 10; ++i)
    EXPECT_EQ(log.Add(t0 + milliseconds(900 * i), "dropped"), std::nullopt);
  EXPECT_EQ(log.Add(t0 + seconds(10), "dropped"), "dropped (11 times in the last 10 s)");
  // A lone event after a quiet interval is logged as it is.
  EXPECT_EQ(log.Add(t0 + seconds(30), "dropped again"), "dropped again");
  EXPECT_EQ(log.Add(t0 + seconds(31), "dropped again"), std::nullopt);
}

}  // namespace
}  // namespace enoki::core
