// The simulator's virtual clock; the simulated network's links (node to node and client hosts to
// nodes), cuts and down nodes, and a golden trace of its link model; an idle node's wake-up.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "sim/cluster.h"
#include "sim/cost_model.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace enoki::sim {
namespace {

using std::chrono::microseconds;
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

// A round is one event: what it leaves for its end (and what that end adds) runs before the next
// event, even one due at the same instant.
TEST(SimulatorTest, EndOfRoundRunsAfterEachEvent) {
  Simulator sim(1);
  std::vector<int> order;
  sim.Schedule(milliseconds(1), [&] {
    order.push_back(1);
    sim.AtEndOfRound([&] {
      order.push_back(10);
      sim.AtEndOfRound([&] { order.push_back(11); });
    });
  });
  sim.Schedule(milliseconds(1), [&] { order.push_back(2); });
  sim.RunFor(milliseconds(5));
  EXPECT_EQ(order, (std::vector<int>{1, 10, 11, 2}));
}

TEST(CostModelTest, MeasuredCostsAreDrawnFromTheirDistribution) {
  std::vector<core::Duration> samples;
  for (int i = 1000; i >= 1; --i) samples.push_back(std::chrono::microseconds(i));
  CostModel m = CostModel::Measured(samples);
  ASSERT_EQ(m.percentiles.size(), 101u);
  EXPECT_EQ(m.percentiles[0], std::chrono::microseconds(1));
  EXPECT_EQ(m.percentiles[50], std::chrono::microseconds(500));
  EXPECT_EQ(m.percentiles[99], std::chrono::microseconds(990));
  EXPECT_EQ(m.percentiles[100], std::chrono::microseconds(1000));
  EXPECT_EQ(m.mean, m.percentiles[50]);
  core::StreamRng rng(3);
  std::vector<core::Duration> draws;
  for (int i = 0; i < 10000; ++i) draws.push_back(m.Draw(rng));
  std::sort(draws.begin(), draws.end());
  EXPECT_GE(draws.front(), std::chrono::microseconds(1));
  EXPECT_LE(draws.back(), std::chrono::microseconds(1000));
  EXPECT_NEAR(core::ToMillis(draws[5000]), 0.5, 0.02);  // the draws' median is the p50
  EXPECT_NEAR(core::ToMillis(draws[9900]), 0.99, 0.02);
  // A fixed cost draws itself; a jittered one stays within its range.
  EXPECT_EQ(CostModel::Fixed(std::chrono::milliseconds(5)).Draw(rng), std::chrono::milliseconds(5));
  CostModel uniform{std::chrono::milliseconds(5), std::chrono::milliseconds(1), {}, {}};
  for (int i = 0; i < 100; ++i) {
    auto d = uniform.Draw(rng);
    EXPECT_GE(d, std::chrono::milliseconds(4));
    EXPECT_LE(d, std::chrono::milliseconds(6));
  }
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
  void OnClientRequest(const net::ClientId&, const net::Caller&, proto::Request&&) override {}
  std::vector<proto::PeerMessage> got;
};

// Each link draws from a stream of its own (core/random.h): messages added on one link leave
// the jitter drawn on another exactly as it was.
TEST(SimNetworkTest, ALinksDrawsDoNotMoveAnotherLinks) {
  auto arrivals_at_d = [](int extra_on_ab) {
    Simulator sim(7);
    SimNetwork net(sim, milliseconds(1));
    Sink b;
    net.TransportOf("b").SetHandler(&b);
    for (const char* n : {"a", "b", "c", "d"}) net.SetUp(n, true);
    net::LinkSpec jittery{.delay = milliseconds(10), .jitter = milliseconds(3)};
    net.SetLink("a", "b", jittery);
    net.SetLink("c", "d", jittery);
    std::vector<int64_t> at_d;
    struct Timed : net::MessageHandler {
      Simulator* sim;
      std::vector<int64_t>* at;
      void OnPeerMessage(proto::PeerMessage&&) override {
        at->push_back(sim->Now().time_since_epoch().count());
      }
      void OnClientRequest(const net::ClientId&, const net::Caller&, proto::Request&&) override {}
    } timed;
    timed.sim = &sim;
    timed.at = &at_d;
    net.TransportOf("d").SetHandler(&timed);
    proto::PeerMessage m;
    for (int i = 0; i < 20; ++i) {
      sim.Schedule(milliseconds(20 * i), [&] {
        for (int k = 0; k < extra_on_ab; ++k) net.TransportOf("a").SendToPeer("b", m);
        net.TransportOf("c").SendToPeer("d", m);
      });
    }
    sim.RunFor(std::chrono::seconds(1));
    return at_d;
  };
  std::vector<int64_t> alone = arrivals_at_d(0);
  ASSERT_EQ(alone.size(), 20u);
  EXPECT_EQ(arrivals_at_d(3), alone);
  // And the jitter is there: not every message took the bare delay.
  int bare = 0;
  for (int i = 0; i < 20; ++i) bare += alone[i] == (20 * i + 10) * 1000000 ? 1 : 0;
  EXPECT_LT(bare, 20);
}

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

// What the simulated network did with 40 messages of 1,000 bytes sent 1 ms apart from a to b over
// delay 10 ms, normal jitter 2 ms, 10% of messages dropped and 1 Mbit/s: one line per message, "seq
// arrival_us" (virtual time since the first send) or "seq lost".
std::string LinkTrace(uint64_t seed) {
  struct Recorder : net::MessageHandler {
    Simulator* sim;
    core::TimePoint t0;
    std::map<int, int64_t> arrived;
    void OnPeerMessage(proto::PeerMessage&& m) override {
      arrived[std::stoi(m.meta_ack().keygroup().substr(0, 4))] =
          std::chrono::duration_cast<std::chrono::microseconds>(sim->Now() - t0).count();
    }
    void OnClientRequest(const net::ClientId&, const net::Caller&, proto::Request&&) override {}
  };
  Simulator sim(seed);
  SimNetwork net(sim, milliseconds(1));
  Recorder b;
  b.sim = &sim;
  b.t0 = sim.Now();
  net.TransportOf("a");
  net.TransportOf("b").SetHandler(&b);
  net.SetUp("b", true);
  net.SetLink("a", "b",
              {.delay = milliseconds(10),
               .jitter = milliseconds(2),
               .distribution = net::LinkSpec::Jitter::kNormal,
               .drop = 0.1,
               .rate_bps = 1e6});
  for (int i = 0; i < 40; ++i) {
    sim.Schedule(milliseconds(i), [&net, i] {
      proto::PeerMessage m;
      m.set_from("a");
      char seq[8];
      std::snprintf(seq, sizeof seq, "%04d", i);
      m.mutable_meta_ack()->set_keygroup(seq + std::string(996, 'x'));
      net.TransportOf("a").SendToPeer("b", m);
    });
  }
  sim.RunFor(std::chrono::seconds(2));
  std::string out;
  for (int i = 0; i < 40; ++i) {
    auto it = b.arrived.find(i);
    out += std::to_string(i) + " " +
           (it == b.arrived.end() ? std::string("lost") : std::to_string(it->second)) + "\n";
  }
  return out;
}

TEST(SimNetworkTest, LinkTraceMatchesTheGoldenFileAndTheModel) {
  std::string trace = LinkTrace(7);
  EXPECT_EQ(trace, LinkTrace(7));  // deterministic
  EXPECT_NE(trace, LinkTrace(8));  // and the seed matters
  // The model: in order, never before the delay and the message's time on the wire (about 8 ms
  // at 1 Mbit/s), one after the other at the rate, some lost.
  std::istringstream in(trace);
  int seq, lost = 0;
  std::string at;
  int64_t last = 0;
  while (in >> seq >> at) {
    if (at == "lost") {
      ++lost;
      continue;
    }
    int64_t us = std::stoll(at);
    EXPECT_GE(us, last) << seq;
    EXPECT_GE(us, seq * 1000 + 8000) << seq;
    last = us;
  }
  EXPECT_GT(lost, 0);
  EXPECT_LT(lost, 12);
  // The golden trace (SimGrid style): any change in what the model predicts shows up here as a
  // diff. ENOKI_UPDATE_GOLDEN=1 rewrites it after a deliberate change. It depends on libstdc++'s
  // random distributions.
  std::string path = std::string(ENOKI_TEST_GOLDEN) + "/link_trace.txt";
  if (std::getenv("ENOKI_UPDATE_GOLDEN") != nullptr) std::ofstream(path) << trace;
  std::ifstream golden(path);
  std::stringstream expected;
  expected << golden.rdbuf();
  EXPECT_EQ(trace, expected.str()) << "golden file " << path;
}

TEST(SimNetworkTest, ClientsUseTheirHostsLinksBothWays) {
  struct Echo : net::MessageHandler {
    net::Transport* transport;
    void OnPeerMessage(proto::PeerMessage&&) override {}
    void OnClientRequest(const net::ClientId& client, const net::Caller&,
                         proto::Request&& r) override {
      proto::Response response;
      response.set_id(r.id());
      transport->ReplyToClient(client, response);
    }
  };
  Simulator sim(3);
  SimNetwork net(sim, milliseconds(1));
  Echo node;
  node.transport = &net.TransportOf("n");
  node.transport->SetHandler(&node);
  net.SetUp("n", true);
  net.SetLink("c", "n", {.delay = milliseconds(3)});
  net.SetLink("n", "c", {.delay = milliseconds(5)});
  auto t0 = sim.Now();
  std::optional<core::Duration> took;
  net.Request("c", "n", proto::Request(), [&](proto::Response&&) { took = sim.Now() - t0; });
  sim.RunFor(milliseconds(100));
  EXPECT_EQ(took, core::Duration(milliseconds(8)));  // 3 there, 5 back
  took.reset();
  net.Request("", "n", proto::Request(), [&](proto::Response&&) { took = sim.Now() - t0; });
  sim.RunFor(milliseconds(100));
  EXPECT_EQ(took, core::Duration(milliseconds(102)));  // a host with default links: 1 + 1
  took.reset();
  net.SetCut("c", "n", true);
  uint64_t lost = net.lost();
  net.Request("c", "n", proto::Request(), [&](proto::Response&&) { took = sim.Now() - t0; });
  sim.RunFor(milliseconds(100));
  EXPECT_FALSE(took.has_value());
  EXPECT_EQ(net.lost(), lost + 1);
}

// The idle wake-up (SimCluster::Costs::wakeup), in virtual time: a put reaching a node that did
// nothing for kIdleAfter is answered after the wake-up, its commit and the links; one reaching it
// while it is busy, or less than kIdleAfter after it was, is not charged it.
TEST(SimClusterTest, AnIdleNodePaysTheWakeUpABusyOneDoesNot) {
  auto answers = [](CostModel wakeup, uint64_t* wakeups) {
    SimCluster cluster(AllPeers({"a"}), 1, milliseconds(1));
    cluster.SetCosts({nullptr, CostModel::Fixed(milliseconds(2)), {}, wakeup});
    proto::Request create;
    create.mutable_create_keygroup()->set_name("kg");
    create.mutable_create_keygroup()->add_replicas("a");
    EXPECT_EQ(cluster.Call("a", create)->code(), proto::OK);
    cluster.sim().RunFor(milliseconds(100));  // idle
    auto t0 = cluster.sim().Now();
    std::vector<double> ms(4, -1);  // each put's answer, from t0
    auto put = [&](int i) {
      proto::Request r;
      r.mutable_put()->set_keygroup("kg");
      r.mutable_put()->set_key("k" + std::to_string(i));
      r.mutable_put()->set_value("v");
      cluster.network().Request("", "a", r, [&, i](proto::Response&& answer) {
        EXPECT_EQ(answer.code(), proto::OK);
        ms[i] = core::ToMillis(cluster.sim().Now() - t0);
      });
    };
    put(0);                                                       // reaches an idle node
    cluster.sim().Schedule(microseconds(500), [&] { put(1); });   // reaches it busy
    cluster.sim().Schedule(microseconds(4800), [&] { put(2); });  // less than 1 ms after
    cluster.sim().Schedule(milliseconds(100), [&] { put(3); });   // idle again
    cluster.sim().RunFor(milliseconds(200));
    *wakeups = cluster.wakeups();
    return ms;
  };
  uint64_t none = 0, charged = 0;
  std::vector<double> without = answers({}, &none);
  std::vector<double> with = answers(CostModel::Fixed(microseconds(300)), &charged);
  // 1 ms there, 2 ms of commit, 1 ms back; the second (there 1.5 ms in) waits for the first's
  // commit (the commit thread free at 3 ms), the third comes 0.8 ms after the node last sent
  // (5.8 ms in).
  EXPECT_EQ(without, (std::vector<double>{4.0, 6.0, 8.8, 104.0}));
  EXPECT_EQ(none, 0u);
  // The first and the fourth wake the node: 0.3 ms more each; the second waits 0.3 ms more (the
  // first's wake-up delayed the first commit, which the second's waits for) and pays none itself;
  // the third comes 0.5 ms after the node last sent, within kIdleAfter: nothing.
  EXPECT_EQ(with, (std::vector<double>{4.3, 6.3, 8.8, 104.3}));
  // And the create's: it reached a node that had not worked since it started (its start-up
  // commit ran beside its CPU).
  EXPECT_EQ(charged, 3u);
}

// A commit takes its cost on the node's commit thread (SimCluster::Costs::commit): a read that
// comes while one is under way is answered at once, the writes that come meanwhile wait for it and
// then share the next commit, and a crash loses the commit under way (it was never acknowledged).
TEST(SimClusterTest, CommitsRunBesideTheNodesCpuAndGroupTheWritesThatWait) {
  SimCluster cluster(AllPeers({"a"}), 1, milliseconds(1));
  cluster.SetCosts({nullptr, CostModel::Fixed(milliseconds(2)), {}, {}});
  proto::Request create;
  create.mutable_create_keygroup()->set_name("kg");
  create.mutable_create_keygroup()->add_replicas("a");
  ASSERT_EQ(cluster.Call("a", create)->code(), proto::OK);
  auto put = [](const std::string& key) {
    proto::Request r;
    r.mutable_put()->set_keygroup("kg");
    r.mutable_put()->set_key(key);
    r.mutable_put()->set_value("v");
    return r;
  };
  ASSERT_EQ(cluster.Call("a", put("old"))->code(), proto::OK);
  cluster.sim().RunFor(milliseconds(100));
  auto t0 = cluster.sim().Now();
  std::map<std::string, double> ms;  // each answer, from t0
  auto send = [&](const std::string& name, proto::Request r) {
    cluster.network().Request("", "a", r, [&, name](proto::Response&& answer) {
      EXPECT_EQ(answer.code(), proto::OK) << name;
      ms[name] = core::ToMillis(cluster.sim().Now() - t0);
    });
  };
  proto::Request get;
  get.mutable_get()->set_keygroup("kg");
  get.mutable_get()->set_key("old");
  send("put1", put("k1"));  // at the node at 1 ms: committed from 1 to 3 ms
  cluster.sim().Schedule(microseconds(500), [&] {
    send("get", get);         // at 1.5 ms, during the commit
    send("put2", put("k2"));  // at 1.5 ms: waits, then committed from 3 to 5 ms
  });
  // At 2 ms, also during the first commit: shares put2's (apart, it would end at 7 ms).
  cluster.sim().Schedule(microseconds(1000), [&] { send("put3", put("k3")); });
  cluster.sim().RunFor(milliseconds(50));
  EXPECT_EQ(ms, (std::map<std::string, double>{
                    {"put1", 4.0}, {"get", 2.5}, {"put2", 6.0}, {"put3", 6.0}}));

  // A crash while a commit is under way: that write is lost, and nothing acknowledged is.
  std::optional<proto::Response> lost;
  cluster.network().Request("", "a", put("k4"), [&](proto::Response&& r) { lost = r; });
  cluster.sim().RunFor(milliseconds(2));  // at the node at 1 ms, committing until 3 ms
  cluster.Crash("a");
  cluster.sim().RunFor(milliseconds(10));
  ASSERT_TRUE(cluster.Restart("a").ok());
  EXPECT_FALSE(lost.has_value());
  for (const std::string key : {"old", "k1", "k2", "k3"}) {
    get.mutable_get()->set_key(key);
    EXPECT_EQ(cluster.Call("a", get)->code(), proto::OK) << key;
  }
  get.mutable_get()->set_key("k4");
  EXPECT_EQ(cluster.Call("a", get)->code(), proto::NOT_FOUND);
}

// A node that will not restart keeps nothing of its commits (a run's nodes that no restart event
// names, testbed/simulation.cc): its writes still take their commit's time and are served, and a
// restart, which would start it on nothing, is refused.
TEST(SimClusterTest, ANodeThatKeepsNothingServesItsWritesAndCannotRestart) {
  SimCluster cluster(AllPeers({"a", "b"}), 1, milliseconds(1));
  cluster.SetCosts({nullptr, CostModel::Fixed(milliseconds(2)), {}, {}});
  cluster.KeepNothing("a");
  proto::Request create;
  create.mutable_create_keygroup()->set_name("kg");
  create.mutable_create_keygroup()->add_replicas("a");
  ASSERT_EQ(cluster.Call("a", create)->code(), proto::OK);
  cluster.sim().RunFor(milliseconds(100));
  proto::Request put;
  put.mutable_put()->set_keygroup("kg");
  put.mutable_put()->set_key("k");
  put.mutable_put()->set_value("v");
  auto t0 = cluster.sim().Now();
  ASSERT_EQ(cluster.Call("a", put)->code(), proto::OK);
  // 1 ms there, the 2 ms commit, 1 ms back.
  EXPECT_EQ(core::ToMillis(cluster.sim().Now() - t0), 4.0);
  proto::Request get;
  get.mutable_get()->set_keygroup("kg");
  get.mutable_get()->set_key("k");
  auto got = cluster.Call("a", get);
  ASSERT_EQ(got->code(), proto::OK);
  EXPECT_EQ(got->get().value(), "v");

  cluster.Crash("a");
  core::Status restarted = cluster.Restart("a");
  EXPECT_EQ(restarted.code(), core::Code::kFailedPrecondition);
  EXPECT_EQ(restarted.message(), "node a keeps nothing of its commits: it cannot restart");
  EXPECT_FALSE(cluster.up("a"));
  // The node beside it, which keeps its commits, restarts on them.
  create.mutable_create_keygroup()->set_name("kb");
  create.mutable_create_keygroup()->set_replicas(0, "b");
  ASSERT_EQ(cluster.Call("b", create)->code(), proto::OK);
  put.mutable_put()->set_keygroup("kb");
  ASSERT_EQ(cluster.Call("b", put)->code(), proto::OK);
  cluster.Crash("b");
  ASSERT_TRUE(cluster.Restart("b").ok());
  get.mutable_get()->set_keygroup("kb");
  EXPECT_EQ(cluster.Call("b", get)->get().value(), "v");
}

}  // namespace
}  // namespace enoki::sim
