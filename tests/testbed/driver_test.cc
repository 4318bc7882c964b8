// The driver in virtual time (the simulator as its Env) with a scripted mode: open and closed
// loops send what they should when they should, timeouts end lost requests, refusals end as
// UNAVAILABLE, and the timeline reaches the mode (links as they are now, partitions, crashes);
// the set-up before and the replica check after go through the same mode.
#include <gtest/gtest.h>

#include "sim/simulator.h"
#include "testbed/driver.h"
#include "testbed/topology.h"

namespace enoki::testbed {
namespace {

using std::chrono::milliseconds;

constexpr const char* kScenario = R"(name: d
seed: 1
nodes:
  - {name: e, tier: edge}
  - {name: c, tier: client}
  - {name: cloud, tier: cloud}
tier_links:
  client-edge: {delay: 1ms}
  edge-cloud: {delay: 10ms}
  client-cloud: {delay: 20ms}
keygroups: [{name: k, replicas: [e, cloud]}]
functions: [{name: f, nodes: e, handler: echo, keygroup: k, timeout: 1s}]
workloads:
  - {name: open, client: c, function: f, node: e, callers: 2, rate: 10/s, duration: 1s}
  - {name: closed, client: c, function: f, node: e, think: 100ms, requests: 5, start: 2s}
timeline:
  - {at: 500ms, partition: [[e, c], [cloud]]}
  - {at: 600ms, heal: true}
  - {at: 700ms, link: {between: [e, cloud], delay: 40ms}}
  - {at: 800ms, crash: cloud}
  - {at: 900ms, restart: cloud}
)";

// Answers every request 2 ms after it was sent, but of the invocations loses the 3rd and refuses
// the 4th. Set-up requests and scans are answered with an empty OK.
struct ScriptedMode : Driver::Mode {
  sim::Simulator* sim;
  int sent = 0;
  std::vector<std::string> calls;
  std::vector<std::string> setup;  // the driver's own requests, in order: "node op"
  void Call(const std::string& from, const std::string& node, proto::Request request,
            OnReply on_reply) override {
    proto::Response response;
    response.set_id(request.id());
    if (request.has_invoke()) {
      EXPECT_EQ(from, "c");
      ++sent;
      if (sent == 3) return;
      if (sent == 4) return on_reply(core::Status::Unavailable("refused"));
      response.mutable_invoke()->set_body(request.invoke().body() + "!");
    } else {
      EXPECT_EQ(from, "");
      setup.push_back(node + " " +
                      std::string(request.has_create_keygroup()   ? "create"
                                  : request.has_keygroup_info()   ? "info"
                                  : request.has_deploy_function() ? "deploy"
                                                                  : "scan"));
    }
    sim->Schedule(milliseconds(2), [on_reply, response] { on_reply(response); });
  }
  void SetLink(const Driver::Pair& p, const net::LinkSpec& spec) override {
    calls.push_back("link " + p.first + ">" + p.second + " " + spec.ToString());
  }
  void Crash(const std::string& node) override { calls.push_back("crash " + node); }
  core::Status Restart(const std::string& node) override {
    calls.push_back("restart " + node);
    return core::Status::Ok();
  }
};

TEST(DriverTest, LoopsTimeoutsAndTimelineInVirtualTime) {
  auto s = ParseScenario(kScenario, "d.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto links = LinkTable(*s);
  ASSERT_TRUE(links.ok());
  sim::Simulator sim(1);
  ScriptedMode mode;
  Driver driver(*s, sim, mode, *links);
  mode.sim = &sim;
  driver.Run();
  ASSERT_TRUE(sim.RunUntilTrue([&] { return driver.phase() == Driver::Phase::kFinished; },
                               std::chrono::seconds(60)));
  EXPECT_TRUE(driver.failure().ok()) << driver.failure().ToString();
  // The set-up: the keygroup, a second later whether e knows it, the function; at the end both
  // replicas read, and found alike (empty).
  EXPECT_EQ(mode.setup,
            (std::vector<std::string>{"e create", "e info", "e deploy", "e scan", "cloud scan"}));
  EXPECT_EQ(driver.start(), core::TimePoint{} + milliseconds(1006));
  ASSERT_EQ(driver.checks().size(), 1u);
  EXPECT_TRUE(driver.checks()[0].converged);

  // Open: 2 callers x 10/s for 1 s; closed: 5 requests. One lost (a TIMEOUT after 1 s + 5 s),
  // one refused.
  const auto& r = driver.requests();
  ASSERT_EQ(r.size(), 25u);
  std::map<std::string, int> by_status;
  for (const auto& x : r) {
    ++by_status[x.status];
    if (x.status == "OK") {
      EXPECT_EQ(x.end_ns - x.start_ns, 2000000);  // the scripted 2 ms
      EXPECT_EQ(x.response_bytes, x.request_bytes + 1);
    }
    if (x.status == "TIMEOUT") {
      EXPECT_EQ(x.end_ns - x.start_ns, 6000000000);
    }
  }
  EXPECT_EQ(by_status["OK"], 23);
  EXPECT_EQ(by_status["TIMEOUT"], 1);
  EXPECT_EQ(by_status["UNAVAILABLE"], 1);
  // The closed loop: each request 100 ms after the previous answer, from 2 s on.
  std::vector<int64_t> closed;
  for (const auto& x : r) {
    if (x.workload == "closed") closed.push_back(x.start_ns);
  }
  ASSERT_EQ(closed.size(), 5u);
  EXPECT_EQ(closed[0], 2000000000);
  for (size_t i = 1; i < closed.size(); ++i) EXPECT_EQ(closed[i] - closed[i - 1], 102000000);

  // The timeline, in order: the partition cuts both directions between the groups where nodes
  // talk (e and cloud are peers; the client talks to e only), the heal restores them, the link
  // change sets both directions.
  EXPECT_EQ(mode.calls,
            (std::vector<std::string>{"link e>cloud delay=10ms,cut=true",
                                      "link cloud>e delay=10ms,cut=true", "link cloud>e delay=10ms",
                                      "link e>cloud delay=10ms", "link e>cloud delay=40ms",
                                      "link cloud>e delay=40ms", "crash cloud", "restart cloud"}));
  std::vector<std::string> kinds;
  for (const auto& e : driver.events())
    kinds.push_back(e.kind + "@" + std::to_string(e.at_ns / 1000000));
  EXPECT_EQ(kinds, (std::vector<std::string>{"partition@500", "heal@600", "link@700", "crash@800",
                                             "restart@900"}));
}

}  // namespace
}  // namespace enoki::testbed
