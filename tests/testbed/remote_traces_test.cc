// NodeClock: a node's trace times moved to the driver's clock follow a steady drift between the
// estimates before and after a run, and its bound is the larger of theirs.
#include <gtest/gtest.h>

#include "testbed/remote_traces.h"

namespace enoki::testbed {
namespace {

TEST(NodeClockTest, FollowsASteadyDriftBetweenItsEstimates) {
  // The node's clock is 5 ms ahead at 1 s and 6 ms ahead at 11 s (100 ppm faster).
  NodeClock clock;
  clock.before = {1'000'000'000, 5'000'000, 30'000, 50'000, 200, 20};
  clock.after = {11'000'000'000, 6'000'000, 40'000, 60'000, 200, 20};
  EXPECT_EQ(clock.ToDriver(1'000'000'000 + 5'000'000), 1'000'000'000);
  EXPECT_EQ(clock.ToDriver(11'000'000'000 + 6'000'000), 11'000'000'000);
  // Half-way, half the drift; beyond the estimates, extrapolated.
  EXPECT_NEAR(clock.ToDriver(6'000'000'000 + 5'500'000), 6'000'000'000, 1);
  EXPECT_NEAR(clock.ToDriver(21'000'000'000 + 7'000'000), 21'000'000'000, 1);
  EXPECT_EQ(clock.error_ns(), 40'000);
  // One estimate (both the same moment): a constant offset.
  clock.after = clock.before;
  EXPECT_EQ(clock.ToDriver(9'000'000'000), 9'000'000'000 - 5'000'000);
}

}  // namespace
}  // namespace enoki::testbed
