// The scenario language: a full scenario read into the model, every shipped scenario file valid,
// broken files refused with the file, line, column and field, and the link table's paths.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "testbed/scenario.h"
#include "testbed/topology.h"

namespace enoki::testbed {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kValid = R"(name: t
seed: 7
warmup: 2s
nodes:
  - {name: cloud, tier: cloud}
  - {name: e1, tier: edge, cpus: "0,2-3"}
  - {name: e2, tier: edge, forward_timeout: 30s}
  - {name: c, tier: client}
tier_links:
  client-edge: {delay: 1ms, rate: 10mbit}
  edge-cloud: {delay: 25ms, jitter: 2ms, rate: 100mbit, loss: 1%}
links:
  - {between: [e1, e2], delay: 10ms, jitter: 1500us, distribution: normal}
keygroups:
  - {name: kg, replicas: [e1, e2], mode: sync}
  - {name: log, replicas: cloud, mutability: append-only}
functions:
  - {name: f, nodes: [e1, e2], handler: movementplan, keygroup: kg, timeout: 2s, concurrency: 5,
     params: {at.lightphasecalculation: cloud}}
workloads:
  - {name: w, client: c, function: f, node: e1, callers: 3, rate: 2.5/s, arrivals: poisson,
     requests: 10,
     body: "c{caller}-{seq} {int:1:9} {random:4} {{literal}}"}
  - {name: closed, client: c, function: f, node: e2, think: 50ms, duration: 1m, start: 5s}
timeline:
  - {at: 1s, phase: one}
  - {at: 2s, link: {between: [e1, cloud], delay: 40ms}}
  - {at: 3s, partition: [[e1], [e2, cloud]]}
  - {at: 4s, heal: true}
  - {at: 5s, crash: e2}
  - {at: 6s, restart: e2}
)";

TEST(ScenarioTest, AFullScenarioReadsIntoTheModel) {
  auto s = ParseScenario(kValid, "t.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "t");
  EXPECT_EQ(s->seed, 7u);
  EXPECT_EQ(s->warmup, seconds(2));
  ASSERT_EQ(s->nodes.size(), 4u);
  EXPECT_EQ(s->nodes[3].tier, Tier::kClient);
  EXPECT_EQ(s->nodes[1].cpus, (std::vector<int>{0, 2, 3}));
  EXPECT_TRUE(s->nodes[2].cpus.empty());
  EXPECT_EQ(s->nodes[2].forward_timeout, seconds(30));
  EXPECT_FALSE(s->nodes[1].forward_timeout.has_value());
  ASSERT_EQ(s->links.size(), 1u);
  EXPECT_EQ(s->links[0].spec.jitter, std::chrono::microseconds(1500));
  EXPECT_EQ(s->links[0].spec.distribution, net::LinkSpec::Jitter::kNormal);
  EXPECT_EQ(s->keygroups[0].mode, proto::SYNC);
  EXPECT_EQ(s->keygroups[1].replicas, std::vector<std::string>{"cloud"});
  EXPECT_EQ(s->keygroups[1].mutability, proto::APPEND_ONLY);
  EXPECT_EQ(s->functions[0].nodes, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(s->functions[0].spec.timeout_ms(), 2000u);
  EXPECT_EQ(s->functions[0].spec.params().at("at.lightphasecalculation"), "cloud");
  const auto& w = s->workloads[0];
  EXPECT_EQ(w.callers, 3);
  EXPECT_DOUBLE_EQ(*w.rate, 2.5);
  EXPECT_TRUE(w.poisson);
  EXPECT_FALSE(s->workloads[1].poisson);
  EXPECT_EQ(*w.requests, 10);
  EXPECT_FALSE(w.duration.has_value());
  const auto& closed = s->workloads[1];
  EXPECT_FALSE(closed.rate.has_value());
  EXPECT_EQ(closed.think, milliseconds(50));
  EXPECT_EQ(*closed.duration, seconds(60));
  EXPECT_EQ(closed.start, seconds(5));
  ASSERT_EQ(s->timeline.size(), 6u);
  EXPECT_EQ(s->timeline[1].link.spec.delay, milliseconds(40));
  EXPECT_EQ(s->timeline[2].groups,
            (std::vector<std::vector<std::string>>{{"e1"}, {"e2", "cloud"}}));
  EXPECT_EQ(s->timeline[4].kind, TimelineEvent::Kind::kCrash);
}

TEST(ScenarioTest, CostsAreATimeOrAModel) {
  auto s = ParseScenario(R"(name: c
commit_cost: 20us
nodes: [{name: e, tier: edge}]
keygroups: [{name: k, replicas: e}]
functions:
  - {name: f, nodes: e, handler: echo, keygroup: k, cost: 150us}
  - {name: g, nodes: e, handler: echo, keygroup: k, cost: {mean: 5ms, jitter: 1ms,
     distribution: normal}}
)",
                         "c.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->commit_cost->mean, std::chrono::microseconds(20));
  EXPECT_EQ(s->functions[0].cost->mean, std::chrono::microseconds(150));
  EXPECT_EQ(s->functions[0].cost->jitter, core::Duration(0));
  EXPECT_EQ(*s->functions[1].cost,
            (sim::CostModel{milliseconds(5), milliseconds(1), net::LinkSpec::Jitter::kNormal, {}}));
  EXPECT_TRUE(s->traces);
}

TEST(ScenarioTest, PeersAreTheNodesThatShareStateOrCalls) {
  auto s = ParseScenario(kValid, "t.yaml");
  ASSERT_TRUE(s.ok());
  // kg's replicas e1 and e2; f at e1 and e2 calls the cloud (at.lightphasecalculation). The log
  // keygroup at the cloud
  // alone, used by no function, adds nobody.
  using Set = std::set<std::string>;
  EXPECT_EQ(Peers(*s), (std::map<std::string, Set>{{"cloud", Set{"e1", "e2"}},
                                                   {"e1", Set{"cloud", "e2"}},
                                                   {"e2", Set{"cloud", "e1"}}}));
}

TEST(ScenarioTest, TheLinkTableHoldsThePairsThatTalkAndFollowsPaths) {
  auto s = ParseScenario(kValid, "t.yaml");
  ASSERT_TRUE(s.ok());
  auto table = LinkTable(*s);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(table->at({"c", "e1"}).delay, milliseconds(1));    // a tier default
  EXPECT_EQ(table->at({"e2", "c"}).delay, milliseconds(1));    // the way back from a workload
  EXPECT_EQ(table->at({"e1", "e2"}).delay, milliseconds(10));  // declared
  EXPECT_EQ(table->at({"cloud", "e2"}).delay, milliseconds(25));
  // The peers both ways (3 pairs) and the two workloads' client and node both ways: 10 links.
  // The client never talks to the cloud.
  EXPECT_EQ(table->size(), 10u);
  EXPECT_FALSE(table->contains({"c", "cloud"}));

  auto sparse = ParseScenario(R"(name: s
nodes: [{name: a, tier: edge}, {name: b, tier: edge}, {name: c, tier: cloud},
        {name: d, tier: cloud}]
links:
  - {between: [a, b], delay: 10ms, jitter: 2ms, rate: 10mbit, drop: 0.2}
  - {between: [b, c], delay: 20ms, jitter: 1500us, loss: 0.5, drop: 10%, rate: 100mbit}
  - {between: [b, d], delay: 5ms}
  - {between: [a, d], delay: 100ms}
keygroups: [{name: k1, replicas: [a, c]}, {name: k2, replicas: [a, d]}]
)",
                              "s.yaml");
  ASSERT_TRUE(sparse.ok()) << sparse.status().ToString();
  auto t = LinkTable(*sparse);
  ASSERT_TRUE(t.ok());
  // No a-c link: through b, delays add, the rate is the smallest, losses and drops compound.
  const net::LinkSpec& ac = t->at({"a", "c"});
  EXPECT_EQ(ac.delay, milliseconds(30));
  EXPECT_DOUBLE_EQ(ac.rate_bps, 10e6);
  EXPECT_DOUBLE_EQ(ac.loss, 0.5);
  EXPECT_DOUBLE_EQ(ac.drop, 1 - 0.8 * 0.9);
  // Two uniform hops, +-2 ms and +-1.5 ms: variances 4/3 and 2.25/3 ms^2 add to 2.083 ms^2, a
  // normal of 1.443 ms.
  EXPECT_NEAR(core::ToMillis(ac.jitter), 1.4434, 0.0001);
  EXPECT_EQ(ac.distribution, net::LinkSpec::Jitter::kNormal);
  // A declared link wins over a shorter path: a-d is 100 ms, not 15 ms through b.
  EXPECT_EQ(t->at({"d", "a"}).delay, milliseconds(100));
  EXPECT_EQ(t->size(), 4u);
}

// Parses `yaml` and returns its error message ("" if it parsed).
std::string ErrorOf(const std::string& yaml) {
  auto s = ParseScenario(yaml, "bad.yaml");
  return s.ok() ? "" : s.status().message();
}

TEST(ScenarioTest, BrokenFilesNameTheFileLineAndField) {
  const std::string nodes =
      "name: b\nnodes:\n  - {name: e, tier: edge}\n  - {name: c, tier: client}\n";
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: e, tier: fog}\n"),
            "bad.yaml:3:21: nodes[0].tier: 'fog' is not one of cloud, edge, client");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: e, tier: edge, cpu: 2}\n"),
            "bad.yaml:3:27: nodes[0].cpu: unknown field (known: cpus, forward_timeout, name, "
            "tier)");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: c, tier: client, forward_timeout: 5s}\n"),
            "bad.yaml:3:46: nodes[0].forward_timeout: a client node forwards nothing: "
            "forward_timeout applies to cloud and edge nodes");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: e, tier: edge, forward_timeout: 2h}\n"),
            "bad.yaml:3:44: nodes[0].forward_timeout: must be whole milliseconds, from 1ms to 1h");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: e, tier: edge, forward_timeout: 1500us}\n"),
            "bad.yaml:3:44: nodes[0].forward_timeout: must be whole milliseconds, from 1ms to 1h");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: e, tier: edge, cpus: 2-1}\n"),
            "bad.yaml:3:33: nodes[0].cpus: '2-1' is not a CPU list such as 0, 0,2 or 1-3");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: e, tier: edge, cpus: '1,1'}\n"),
            "bad.yaml:3:33: nodes[0].cpus: '1,1' is not a CPU list such as 0, 0,2 or 1-3");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: c, tier: client, cpus: 0}\n"),
            "bad.yaml:3:35: nodes[0].cpus: a client node's callers run in the enoki process: "
            "cpus applies to cloud and edge nodes");
  EXPECT_EQ(ErrorOf("nodes:\n  - {name: e, tier: edge}\n"),
            "bad.yaml:1:1: name: missing (required)");
  EXPECT_EQ(ErrorOf("name: b\nnodes: [{name: e, tier: edge}, {name: e, tier: cloud}]\n"),
            "bad.yaml:2:39: nodes[1].name: node 'e' is declared twice");
  EXPECT_EQ(ErrorOf("name: b\nnodes: [{name: 'a b', tier: edge}]\n"),
            "bad.yaml:2:16: nodes[0].name: the name 'a b' may only hold letters, digits, '_', "
            "'-' and '.'");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: [e, x]}]\n"),
            "bad.yaml:5:33: keygroups[0].replicas: no node 'x'");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: [c]}]\n"),
            "bad.yaml:5:33: keygroups[0].replicas: 'c' is a client node, which holds no replicas");
  EXPECT_EQ(ErrorOf(nodes + "tier_links:\n  edge-client: {delay: 5}\n"),
            "bad.yaml:6:24: tier_links.edge-client.delay: delay '5' is not a duration such as "
            "25ms, 500us or 1s");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: e}]\n"
                            "functions: [{name: f, nodes: e, handler: nope, keygroup: k}]\n")
                .substr(0, 69),
            "bad.yaml:6:42: functions[0].handler: no native function 'nope' (avail");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: e}]\n"
                            "functions: [{name: f, nodes: e, handler: write, keygroup: k, "
                            "params: {size: 10}}]\n"),
            "bad.yaml:6:70: functions[0].params: native function 'write' has no parameter "
            "'size' (it takes none)");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: e}]\n"
                            "functions: [{name: f, nodes: e, runtime: process, handler: nope.py, "
                            "keygroup: k}]\n"),
            "bad.yaml:6:60: functions[0].handler: no program at nope.py");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: e}]\n"
                            "functions: [{name: f, nodes: e, handler: echo, keygroup: k},\n"
                            "            {name: f, nodes: [e], handler: fail, keygroup: k}]\n"),
            "bad.yaml:7:30: functions[1].nodes: function 'f' is deployed at 'e' twice");
  std::string with_function = nodes +
                              "tier_links: {client-edge: {delay: 1ms}}\n"
                              "keygroups: [{name: k, replicas: e}]\n"
                              "functions: [{name: f, nodes: e, handler: echo, keygroup: k}]\n";
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e}]\n"),
            "bad.yaml:8:13: workloads[0]: give requests (per caller) or a duration, or both");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e, "
                                    "requests: 1, stale_against: x}]\n"),
            "bad.yaml:8:84: workloads[0].stale_against: no workload 'x'");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e, "
                                    "requests: 1, stale_against: w}]\n"),
            "bad.yaml:8:84: workloads[0].stale_against: a workload's reads need another's writes");
  EXPECT_EQ(ErrorOf(nodes + "tier_links: {client-edge: {delay: 1ms}}\n"
                            "keygroups: [{name: k, replicas: e}]\n"
                            "functions: [{name: f, nodes: e, handler: echo, keygroup: k},\n"
                            "            {name: g, nodes: e, handler: echo, keygroup: k}]\n"
                            "workloads: [{name: w, client: c, function: f, node: e, requests: 1},\n"
                            "  {name: r, client: c, function: g, node: e, requests: 1, "
                            "stale_against: w}]\n"),
            "bad.yaml:10:74: workloads[1].stale_against: workload 'w' calls function 'f', not "
            "'g': the writes must be of the same function");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: e, function: f, node: e, "
                                    "requests: 1}]\n"),
            "bad.yaml:8:31: workloads[0].client: 'e' is not a client node");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e, "
                                    "requests: 1, rate: fast}]\n"),
            "bad.yaml:8:75: workloads[0].rate: 'fast' is not a rate per caller such as 10/s (at "
            "most 1000000/s)");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e, "
                                    "requests: 1, arrivals: poisson}]\n"),
            "bad.yaml:8:79: workloads[0].arrivals: only for an open loop (give a rate)");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e, "
                                    "requests: 1, rate: 1/s, arrivals: burst}]\n"),
            "bad.yaml:8:90: workloads[0].arrivals: 'burst' is not one of periodic, poisson");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e, "
                                    "requests: 1, body: '{oops}'}]\n"),
            "bad.yaml:8:75: workloads[0].body: '{oops}' is not one of {caller}, {seq}, "
            "{int:A:B} (A <= B), {random:N}");
  EXPECT_EQ(ErrorOf(with_function + "workloads: [{name: w, client: c, function: f, node: e, "
                                    "requests: 1, rate: nan/s}]\n"),
            "bad.yaml:8:75: workloads[0].rate: 'nan/s' is not a rate per caller such as 10/s (at "
            "most 1000000/s)");
  EXPECT_EQ(ErrorOf(with_function + "commit_cost: {mean: 1ms, distribution: pareto}\n"),
            "bad.yaml:8:40: commit_cost.distribution: 'pareto' is not one of uniform, normal");
  EXPECT_EQ(ErrorOf(with_function + "security: tls\n"),
            "bad.yaml:8:11: security: 'tls' is not none or curve");
  EXPECT_EQ(ErrorOf(with_function + "security_cost: 20us\n"),
            "bad.yaml:8:16: security_cost: is the cost of CURVE, and needs security: curve");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: e}]\n"
                            "functions: [{name: f, nodes: e, handler: echo, keygroup: k, "
                            "cost: soon}]\n"),
            "bad.yaml:6:67: functions[0].cost: 'soon' is not a duration such as 250ms or 2s "
            "(up to a year)");
  EXPECT_EQ(ErrorOf(nodes + "traces: maybe\n"),
            "bad.yaml:5:9: traces: 'maybe' is not true or false");
  EXPECT_EQ(ErrorOf(nodes + "tier_links:\n  edge-client: {delay: '1ms loss=50%'}\n"),
            "bad.yaml:6:24: tier_links.edge-client.delay: '1ms loss=50%' is not one value");
  EXPECT_EQ(ErrorOf(with_function + "timeline:\n  - {at: 2s, restart: e}\n"),
            "bad.yaml:9:23: timeline[0].restart: 'e' is not down (crash it first)");
  EXPECT_EQ(ErrorOf(with_function + "timeline:\n  - {at: 2s, phase: a}\n  - {at: 1s, phase: b}\n"),
            "bad.yaml:10:10: timeline[1].at: events must be in time order");
  EXPECT_EQ(ErrorOf(with_function + "timeline:\n  - {at: 2s, crash: e, phase: x}\n"),
            "bad.yaml:9:5: timeline[0]: give exactly one of link, partition, heal, crash, "
            "restart, phase");
  EXPECT_EQ(ErrorOf("name: b\nnodes: [{name: e, tier: edge\n"),
            "bad.yaml:3:1: not valid YAML: end of map flow not found");
  EXPECT_EQ(ErrorOf(nodes + "keygroups: [{name: k, replicas: e}]\n"
                            "functions: [{name: f, nodes: e, handler: echo, keygroup: k}]\n"
                            "workloads: [{name: w, client: c, function: f, node: e, "
                            "requests: 1}]\n"),
            "bad.yaml: no link or path between e and c: declare a link, or a "
            "tier_links default for edge-client");
  EXPECT_EQ(LoadScenario("/no/such.yaml").status().message(),
            "cannot read scenario file /no/such.yaml");
}

// yaml-cpp keeps both pairs of a key given twice, and a reader would take one of them silently:
// the second is refused where it stands, at the top of the file or deeper.
TEST(ScenarioTest, AKeyGivenTwiceIsRefusedWhereItIsGivenAgain) {
  const std::string nodes = "nodes:\n  - {name: e, tier: edge}\n";
  EXPECT_EQ(ErrorOf("name: a\n" + nodes + "name: b\n"),
            "bad.yaml:4:1: name: duplicate key (first at line 1, column 1)");
  EXPECT_EQ(ErrorOf("name: b\nnodes:\n  - {name: e, tier: edge, tier: cloud}\n"),
            "bad.yaml:3:27: nodes[0].tier: duplicate key (first at line 3, column 15)");
  EXPECT_EQ(ErrorOf("name: b\n" + nodes +
                    "tier_links:\n  edge-edge:\n    delay: 1ms\n    jitter: 1ms\n"
                    "    delay: 2ms\n"),
            "bad.yaml:8:5: tier_links.edge-edge.delay: duplicate key (first at line 6, column 5)");
  // A key that is an alias of an earlier scalar is that scalar.
  EXPECT_EQ(ErrorOf("name: b\ndescription: &k delay\n" + nodes +
                    "tier_links:\n  edge-edge:\n    delay: 1ms\n    *k : 2ms\n"),
            "bad.yaml:8:5: tier_links.edge-edge.delay: duplicate key (first at line 7, column 5)");
  // Aliases are followed only as far as the text could hold nodes: a few hundred bytes that would
  // be ten billion nodes to walk are read at once, and refused by the reader for what they are.
  std::string laughs = "name: b\n" + nodes + "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i < 10; ++i) {
    std::string prev = "*x" + std::to_string(i - 1);
    laughs += "x" + std::to_string(i) + ": &x" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) laughs += (j ? ", " : "") + prev;
    laughs += "]\n";
  }
  EXPECT_EQ(ErrorOf(laughs).substr(0, 42), "bad.yaml:4:1: x0: unknown field (known: co");
  // An alias inside what it names is a node that holds itself: not followed down (in a file long
  // enough for the walk's budget to go deeper than the stack), and a key given twice in it is
  // still named where it stands.
  const std::string padding = "# " + std::string(20000, '.') + "\n";
  EXPECT_EQ(ErrorOf("name: b\n" + nodes + "x: &a [*a]\n" + padding).substr(0, 41),
            "bad.yaml:4:1: x: unknown field (known: co");
  EXPECT_EQ(ErrorOf("name: b\n" + nodes + "x: &a {k: 1, self: *a, k: 2}\n" + padding),
            "bad.yaml:4:24: x.k: duplicate key (first at line 4, column 8)");
}

// A body whose request is larger than a node takes would be dropped by the node unanswered, and
// every request of the run would time out: refused, to the byte. A request to node e of function
// f adds 43 bytes to its body here (the Envelope's header 5, the widest id 11, to: e 3, the
// invoke header 6, function: f 3, the body's header 5, the arrival stamp with the widest time
// 10); a node takes 3 MiB with the default value limit, 33 bytes less with CURVE (which adds
// them).
TEST(ScenarioTest, ABodyLargerThanANodeTakesIsRefused) {
  auto with_body = [](const std::string& body, const std::string& more = "") {
    return "name: b\nnodes:\n  - {name: e, tier: edge}\n  - {name: c, tier: client}\n"
           "tier_links: {client-edge: {delay: 1ms}}\n"
           "keygroups: [{name: k, replicas: e}]\n"
           "functions: [{name: f, nodes: e, handler: echo, keygroup: k}]\n"
           "workloads: [{name: w, client: c, function: f, node: e, requests: 1,\n"
           "             body: '" +
           body + "'}]\n" + more;
  };
  const int64_t kLargest = (3 << 20) - 43;
  EXPECT_EQ(ErrorOf(with_body("{random:" + std::to_string(kLargest) + "}")), "");
  EXPECT_EQ(ErrorOf(with_body("{random:" + std::to_string(kLargest + 1) + "}")),
            "bad.yaml:9:20: workloads[0].body: workload 'w' sends bodies of up to 3145686 bytes, "
            "in requests larger than the 3145728 bytes node 'e' takes (with the default value "
            "limit of 1048576 bytes), which it would drop unanswered");
  // Every part at its widest: the caller and sequence numbers at their largest, an int range's
  // widest end.
  EXPECT_EQ(
      ErrorOf(with_body("{caller}{seq}{int:-10:5}{random:" + std::to_string(kLargest - 5) + "}")),
      "");
  EXPECT_NE(
      ErrorOf(with_body("{caller}{seq}{int:-100:5}{random:" + std::to_string(kLargest - 5) + "}")),
      "");
  EXPECT_EQ(
      ErrorOf(with_body("{random:" + std::to_string(kLargest - 33) + "}", "security: curve\n")),
      "");
  EXPECT_EQ(
      ErrorOf(with_body("{random:" + std::to_string(kLargest - 32) + "}", "security: curve\n")),
      "bad.yaml:9:20: workloads[0].body: workload 'w' sends bodies of up to 3145653 bytes, "
      "in requests larger than the 3145695 bytes node 'e' takes (with the default value "
      "limit of 1048576 bytes, less 33 for CURVE), which it would drop unanswered");
  // Far larger: refused without making a request of it.
  EXPECT_NE(ErrorOf(with_body("{random:67108864}{random:67108864}")).find("up to 134217728 bytes"),
            std::string::npos);
}

TEST(ScenarioTest, EveryShippedScenarioIsValid) {
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(ENOKI_SCENARIOS)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    auto s = LoadScenario(entry.path().string());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
  }
  EXPECT_GE(files, 2);
}

}  // namespace
// A keygroup replicated on 20,000 nodes would make 400 million pairs of nodes that talk: refused
// at once (the count stops at the limit), naming the keygroup, where 1,000 replicas are fine.
TEST(ScenarioTest, TooManyPairsOfNodesThatTalkAreRefused) {
  auto scenario_of = [](int edges) {
    std::string text = "name: big\nnodes:\n";
    std::string replicas;
    for (int i = 0; i < edges; ++i) {
      text += "  - {name: e" + std::to_string(i) + ", tier: edge}\n";
      replicas += (i ? ", e" : "e") + std::to_string(i);
    }
    text += "tier_links:\n  edge-edge: {delay: 1ms}\nkeygroups:\n  - {name: all, replicas: [" +
            replicas + "]}\n";
    return text;
  };
  auto fine = ParseScenario(scenario_of(1000), "big.yaml");
  EXPECT_TRUE(fine.ok()) << fine.status().ToString();
  auto big = ParseScenario(scenario_of(20000), "big.yaml");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().message(),
            "big.yaml:20006:27: keygroups[0].replicas: the nodes would talk in more than 1000000 "
            "pairs, which no run holds (a keygroup replicated on R nodes makes R(R-1); 'all' has "
            "20000)");
}

}  // namespace enoki::testbed
