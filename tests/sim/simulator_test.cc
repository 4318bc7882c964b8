// The simulator's virtual clock and the simulated network's delays and cuts.
#include <gtest/gtest.h>

#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace enoki::sim {
namespace {

using std::chrono::milliseconds;

TEST(SimulatorTest, ClockJumpsFromEventToEvent) {
  Simulator sim(1);
  std::vector<std::pair<int, core::Duration>> seen;
  auto t0 = sim.Now();
  sim.Schedule(milliseconds(30), [&] { seen.push_back({2, sim.Now() - t0}); });
  sim.Schedule(milliseconds(10), [&] {
    seen.push_back({1, sim.Now() - t0});
    sim.Schedule(milliseconds(5), [&] { seen.push_back({3, sim.Now() - t0}); });
  });
  sim.RunFor(milliseconds(100));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(1, core::Duration(milliseconds(10))));
  EXPECT_EQ(seen[1], std::make_pair(3, core::Duration(milliseconds(15))));
  EXPECT_EQ(seen[2], std::make_pair(2, core::Duration(milliseconds(30))));
  EXPECT_EQ(sim.Now() - t0, milliseconds(100));
  EXPECT_EQ(sim.WallMicros(), Simulator::kDefaultWallStartUs + 100'000);
}

TEST(SimulatorTest, RunUntilTrueGivesUpAtTheLimit) {
  Simulator sim(1);
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    sim.Schedule(milliseconds(10), tick);
  };
  tick();
  EXPECT_TRUE(sim.RunUntilTrue([&] { return ticks == 5; }, milliseconds(100)));
  EXPECT_FALSE(sim.RunUntilTrue([&] { return ticks == 1000; }, milliseconds(100)));
  EXPECT_LE(ticks, 20);
}

class Sink : public net::MessageHandler {
 public:
  void OnPeerMessage(proto::PeerMessage&& msg) override { got.push_back(std::move(msg)); }
  void OnClientRequest(const net::ClientId&, proto::Request&&) override {}
  std::vector<proto::PeerMessage> got;
};

TEST(SimNetworkTest, DelaysCutsAndDownNodes) {
  Simulator sim(1);
  SimNetwork net(sim, milliseconds(5));
  net.SetDelay("a", "b", milliseconds(25));
  Sink b;
  net.TransportOf("a");
  net.TransportOf("b").SetHandler(&b);
  net.SetUp("a", true);
  net.SetUp("b", true);
  proto::PeerMessage msg;
  msg.set_from("a");
  net.TransportOf("a").SendToPeer("b", msg);
  sim.RunFor(milliseconds(24));
  EXPECT_TRUE(b.got.empty());
  sim.RunFor(milliseconds(1));
  EXPECT_EQ(b.got.size(), 1u);

  net.SetCut("b", "a", true);  // either order names the same link
  net.TransportOf("a").SendToPeer("b", msg);
  sim.RunFor(milliseconds(50));
  EXPECT_EQ(b.got.size(), 1u);
  net.SetCut("a", "b", false);
  net.SetUp("b", false);
  net.TransportOf("a").SendToPeer("b", msg);
  sim.RunFor(milliseconds(50));
  EXPECT_EQ(b.got.size(), 1u);
  EXPECT_EQ(net.lost(), 2u);
}

}  // namespace
}  // namespace enoki::sim
