// The hybrid logical clock's properties, on the simulator's virtual clock: its timestamps never
// go back, never fall behind the wall clock, and stay ordered where the 32-bit logical part would
// wrap (a cluster pushed to that point: PeerChecksTest.WritesAcrossTheClocksWrapAreNotLost).
#include <gtest/gtest.h>

#include <limits>

#include "node/version.h"
#include "sim/simulator.h"

namespace enoki {
namespace {

constexpr uint32_t kMaxLogical = std::numeric_limits<uint32_t>::max();

TEST(HybridClockTest, MonotonicNeverBehindTheWallClockAndOrderedAcrossTheWrap) {
  sim::Simulator sim(1);
  node::HybridClock clock(sim, "a");
  node::Version last = clock.Now();
  // While the wall clock stands still, and while it moves.
  for (int i = 0; i < 1000; ++i) {
    if (i % 100 == 0) sim.RunFor(std::chrono::microseconds(7));
    node::Version v = clock.Now();
    EXPECT_LT(last, v);
    EXPECT_GE(v.wall_us, sim.WallMicros());
    last = v;
  }
  // A timestamp seen 1 s ahead whose logical part is nearly full: the next ones carry.
  int64_t ahead = sim.WallMicros() + 1000000;
  clock.Observe({ahead, kMaxLogical - 2, "b"});
  std::vector<node::Version> seen;
  for (int i = 0; i < 5; ++i) seen.push_back(clock.Now());
  EXPECT_EQ(seen[0].wall_us, ahead);
  EXPECT_EQ(seen[0].logical, kMaxLogical - 1);
  EXPECT_EQ(seen[1].logical, kMaxLogical);
  EXPECT_EQ(seen[2].wall_us, ahead + 1);
  EXPECT_EQ(seen[2].logical, 0u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]) << i;
  // Once the wall clock passes the carried time, timestamps follow it again.
  sim.RunFor(std::chrono::seconds(2));
  node::Version later = clock.Now();
  EXPECT_EQ(later.wall_us, sim.WallMicros());
  EXPECT_EQ(later.logical, 0u);
  EXPECT_LT(seen.back(), later);
}

}  // namespace
}  // namespace enoki
