// Watching running nodes, as real `enoki node` processes: `enoki keygroup list`, `enoki node
// status` (peers up or down, round-trip times, outboxes, keygroups held) in a cluster that loses
// a node, the permissions both need, and the metrics endpoint (/health, /metrics) counting what
// the load generator sent.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "adapters/node_process.h"
#include "adapters/subprocess.h"
#include "tests/integration/commands.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using testing::Enoki;
using testing::KeyFolder;
using testing::NodeCluster;
using testing::Output;
using testing::RunShell;

const std::vector<std::string> kMetrics = {"--metrics", "127.0.0.1:0"};

// GET http://127.0.0.1:`port``path`: the status code and the body.
testing::Http Get(int port, const std::string& path) {
  Output out =
      RunShell("curl -s -o - -w '\\n%{http_code}' http://127.0.0.1:" + std::to_string(port) + path);
  auto nl = out.text.rfind('\n');
  if (nl == std::string::npos) return {0, out.text};
  return {std::atoi(out.text.c_str() + nl + 1), out.text.substr(0, nl)};
}

// The value of the sample `series` (name and labels, exactly as exposed) in `text`; -1 if absent.
double Sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    ++at;
  }
  return -1;
}

proto::PeerStatus PeerOf(const proto::NodeStatus& s, const std::string& peer) {
  for (const auto& p : s.peers()) {
    if (p.node() == peer) return p;
  }
  ADD_FAILURE() << "no peer " << peer << " in " << s.ShortDebugString();
  return {};
}

TEST(StatusTest, KeygroupListAndNodeStatusShowAPeerGoingDown) {
  NodeCluster cluster({"a", "b", "c"}, {}, false, {{"a", kMetrics}, {"b", kMetrics}});
  auto a = cluster.Client("a");
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  for (const char* r : {"a", "b", "c"}) create.add_replicas(r);
  ASSERT_TRUE(a->CreateKeygroup(create).ok());
  create.Clear();
  create.set_name("solo");
  create.set_mode(proto::SYNC);
  create.set_mutability(proto::APPEND_ONLY);
  create.add_replicas("b");
  ASSERT_TRUE(a->CreateKeygroup(create).ok());

  // The list, as a user sees it, at a node that holds one and forwards the other.
  Output list = Enoki("keygroup list --node " + cluster.endpoint("a"));
  ASSERT_EQ(list.status, 0) << list.text;
  EXPECT_EQ(list.text,
            "NAME\tREPLICAS\tMUTABILITY\tREPLICATION\tHERE\n"
            "kg\ta,b,c\tmutable\tasync\theld\n"
            "solo\tb\tappend-only\tsync\t-\n");
  auto listed = a->ListKeygroups();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->keygroups_size(), 2);
  EXPECT_TRUE(listed->keygroups(0).held());
  EXPECT_FALSE(listed->keygroups(1).replica());

  // Every peer up, with a round-trip time, once the pings went round.
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    auto s = a->NodeStatus();
    return s.ok() && PeerOf(*s, "b").up() && PeerOf(*s, "c").up() && PeerOf(*s, "b").rtt_ms() > 0 &&
           PeerOf(*s, "c").rtt_ms() > 0;
  }));
  auto status = a->NodeStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->node(), "a");
  ASSERT_EQ(status->held_size(), 1);
  EXPECT_EQ(status->held(0), "kg");
  EXPECT_LT(PeerOf(*status, "b").rtt_ms(), 1000);

  // c dies: a sees it down after the liveness timeout (4 x 500 ms pings + 50 ms retry), and owes
  // it every write from then on; b, up, owes nothing once it acknowledged.
  cluster.Kill("c");
  auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    auto s = a->NodeStatus();
    return s.ok() && !PeerOf(*s, "c").up();
  }));
  double took_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_GT(took_ms, 1000) << "down before the liveness timeout";
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(a->Put("kg", "k" + std::to_string(i), "v").ok());
  }
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    auto s = a->NodeStatus();
    return s.ok() && PeerOf(*s, "b").outbox() == 0 && PeerOf(*s, "c").outbox() >= 30;
  }));
  status = a->NodeStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(PeerOf(*status, "b").up());
  EXPECT_GT(PeerOf(*status, "b").rtt_ms(), 0);
  EXPECT_GT(PeerOf(*status, "c").last_heard_ms(), 2000);
  EXPECT_EQ(status->outbox(), PeerOf(*status, "c").outbox());

  Output shown = Enoki("node status --node " + cluster.endpoint("a"));
  ASSERT_EQ(shown.status, 0) << shown.text;
  EXPECT_TRUE(std::regex_search(shown.text, std::regex("\nb\tup\t[0-9.]+\t[0-9.]+\t0\tipc://")))
      << shown.text;
  EXPECT_TRUE(
      std::regex_search(shown.text, std::regex("\nc\tdown\t[0-9.]+\t[0-9.]+\t[0-9]+\tipc://")))
      << shown.text;
  EXPECT_NE(shown.text.find("\nheld: kg\n"), std::string::npos) << shown.text;

  // The same, as metrics.
  auto metrics = Get(cluster.metrics_port("a"), "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.body;
  EXPECT_EQ(Sample(metrics.body, "enoki_peer_up{peer=\"b\"}"), 1);
  EXPECT_EQ(Sample(metrics.body, "enoki_peer_up{peer=\"c\"}"), 0);
  EXPECT_EQ(Sample(metrics.body, "enoki_replication_outbox_entries{peer=\"c\"}"),
            static_cast<double>(PeerOf(*status, "c").outbox()));
  EXPECT_GT(Sample(metrics.body, "enoki_peer_rtt_seconds{peer=\"b\"}"), 0);
  EXPECT_EQ(Sample(metrics.body, "enoki_keygroups"), 2);
  EXPECT_EQ(Sample(metrics.body, "enoki_keygroups_held"), 1);
  EXPECT_EQ(Sample(metrics.body, "enoki_storage_items"), 30);

  // b applied a's 30 writes, each with a lag (one host: one wall clock) well below a second.
  auto at_b = Get(cluster.metrics_port("b"), "/metrics");
  ASSERT_EQ(at_b.status, 200);
  EXPECT_EQ(Sample(at_b.body, "enoki_replication_applied_total"), 30);
  EXPECT_EQ(Sample(at_b.body, "enoki_replication_lag_seconds_count"), 30);
  EXPECT_EQ(Sample(at_b.body, "enoki_replication_lag_seconds_bucket{le=\"1\"}"), 30);
  EXPECT_EQ(Sample(at_b.body, "enoki_requests_total{op=\"put\"}"), -1);  // none sent to b
}

TEST(StatusTest, ListNeedsAdminOrReadAllAndStatusNeedsAdmin) {
  KeyFolder keys({"n", "ops", "all", "reader"});
  std::string access = keys.AccessLines(
      {"ops ops.pub admin", "all all.pub read:*", "reader reader.pub read:kg write:kg"});
  NodeCluster cluster({"n"}, {"--key", keys.key("n"), "--access", access});
  auto as = [&](const std::string& who) {
    return adapters::Client(cluster.context(), cluster.endpoint("n"), milliseconds(3000), "n",
                            keys.ClientOf(who, "n"));
  };
  auto ops = as("ops");
  auto all = as("all");
  auto reader = as("reader");
  EXPECT_TRUE(ops.ListKeygroups().ok());
  EXPECT_TRUE(ops.NodeStatus().ok());
  EXPECT_TRUE(all.ListKeygroups().ok());
  auto status = all.NodeStatus();
  EXPECT_EQ(status.status().code(), core::Code::kPermissionDenied);
  EXPECT_EQ(status.status().message(),
            "client 'all' may not ask for the node's status: it needs 'admin' in the node's "
            "access file");
  auto list = reader.ListKeygroups();
  EXPECT_EQ(list.status().code(), core::Code::kPermissionDenied);
  EXPECT_EQ(list.status().message(),
            "client 'reader' may not list keygroups: it needs 'admin' or 'read:*' in the node's "
            "access file");
}

TEST(StatusTest, MetricsBeyondLoopbackNeedInsecure) {
  Output r = Enoki("node --id x --listen ipc:///tmp/enoki-status-test-x --metrics 0.0.0.0:0");
  EXPECT_EQ(r.status, 1) << r.text;
  EXPECT_NE(r.text.find("--metrics 0.0.0.0:0 is reachable beyond this host"), std::string::npos)
      << r.text;
  EXPECT_NE(r.text.find("--insecure"), std::string::npos) << r.text;
}

// What the node counts is what the load generator sent: enoki-kvload's requests, counted by
// the node as they were answered, while the load runs and after.
TEST(StatusTest, MetricsCountWhatTheLoadGeneratorSent) {
  NodeCluster cluster({"n"}, kMetrics);
  int port = cluster.metrics_port("n");
  auto health = Get(port, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok n\n");
  EXPECT_EQ(Get(port, "/nothing").status, 404);

  const int kPuts = 20000;
  std::string load = std::string(ENOKI_KVLOAD) + " --node " + cluster.endpoint("n") +
                     " --op set --clients 8 --requests " + std::to_string(kPuts) + " 2>&1";
  Output put_load;
  std::thread loader([&] { put_load = RunShell(load); });
  // During the load: the count only grows, and never beyond what was sent.
  double last = 0;
  int scrapes = 0;
  for (auto start = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - start < std::chrono::seconds(60); ++scrapes) {
    auto m = Get(port, "/metrics");
    ASSERT_EQ(m.status, 200);
    double puts = std::max(0.0, Sample(m.body, "enoki_requests_total{op=\"put\"}"));
    EXPECT_GE(puts, last);
    EXPECT_LE(puts, kPuts);
    last = puts;
    if (puts >= kPuts) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  loader.join();
  ASSERT_EQ(put_load.status, 0) << put_load.text;
  std::smatch sent;
  ASSERT_TRUE(std::regex_search(put_load.text, sent, std::regex("set: ([0-9]+) requests")))
      << put_load.text;
  std::printf("enoki-kvload: %s", put_load.text.c_str());
  std::printf("scraped /metrics %d times during the load\n", scrapes);

  auto m = Get(port, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE enoki_requests_total counter\n"), std::string::npos);
  EXPECT_NE(m.body.find("# TYPE enoki_request_duration_seconds histogram\n"), std::string::npos);
  double counted = Sample(m.body, "enoki_requests_total{op=\"put\"}");
  std::printf("enoki-kvload sent %s puts; the node counted %.0f\n", sent[1].str().c_str(), counted);
  EXPECT_EQ(counted, std::stod(sent[1]));  // exact: well within 1%
  EXPECT_EQ(Sample(m.body, "enoki_request_errors_total{op=\"put\"}"), 0);
  EXPECT_EQ(Sample(m.body, "enoki_request_duration_seconds_count{op=\"put\"}"), counted);
  EXPECT_EQ(Sample(m.body, "enoki_request_duration_seconds_bucket{op=\"put\",le=\"+Inf\"}"),
            counted);
  EXPECT_GT(Sample(m.body, "enoki_request_duration_seconds_sum{op=\"put\"}"), 0);
  EXPECT_EQ(Sample(m.body, "enoki_requests_total{op=\"create_keygroup\"}"), 1);
  EXPECT_GT(Sample(m.body, "enoki_storage_file_bytes"), 0);

  // Gets, some of absent keys: those are its errors (NOT_FOUND), as many as the load's misses.
  Output get_load = RunShell(std::string(ENOKI_KVLOAD) + " --node " + cluster.endpoint("n") +
                             " --op get --clients 4 --requests 5000 2>&1");
  ASSERT_EQ(get_load.status, 0) << get_load.text;
  std::smatch got;
  ASSERT_TRUE(
      std::regex_search(get_load.text, got, std::regex("get: ([0-9]+) requests.* ([0-9]+) misses")))
      << get_load.text;
  m = Get(port, "/metrics");
  EXPECT_EQ(Sample(m.body, "enoki_requests_total{op=\"get\"}"), std::stod(got[1]));
  EXPECT_EQ(Sample(m.body, "enoki_request_errors_total{op=\"get\"}"), std::stod(got[2]));

  // Function calls: a native function called 25 times.
  auto c = cluster.Client("n");
  proto::FunctionSpec echo;
  echo.set_name("echo");
  echo.set_handler("echo");
  echo.set_keygroup("bench");
  ASSERT_TRUE(c->DeployFunction(echo).ok());
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(c->Invoke("echo", "hi").ok());
  m = Get(port, "/metrics");
  EXPECT_EQ(Sample(m.body, "enoki_function_calls_total{function=\"echo\"}"), 25);
  EXPECT_EQ(Sample(m.body, "enoki_function_errors_total{function=\"echo\"}"), 0);
  EXPECT_EQ(Sample(m.body, "enoki_function_in_flight{function=\"echo\"}"), 0);
  EXPECT_EQ(Sample(m.body, "enoki_function_workers{function=\"echo\"}"), 0);
  EXPECT_EQ(Sample(m.body, "enoki_requests_total{op=\"invoke\"}"), 25);
}

// Over TCP to a node without keys, enoki-kvload's clients speak ZeroMQ's wire protocol themselves
// (bench/kv_load.cc): every put, get and invocation is answered, and the node holds what they
// wrote.
TEST(StatusTest, TheLoadGeneratorSpeaksZmtpOverTcp) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("enoki-kvload-zmtp-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  adapters::NodeProcessOptions o;
  o.binary = ENOKI_BINARY;
  o.id = "z";
  o.listen = "tcp://127.0.0.1:0";
  o.ready_file = (dir / "ready").string();
  o.log_level = "warn";
  o.more = {"--in-memory"};
  auto node = adapters::Subprocess::Start(adapters::NodeCommandLine(o), (dir / "log").string());
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  auto info = adapters::WaitForReadyFile(o.ready_file, "z", *node, std::chrono::seconds(10));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const std::string endpoint = info->endpoint;
  ASSERT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;
  std::string load = std::string(ENOKI_KVLOAD) + " --node " + endpoint + " --clients 8";

  Output puts = RunShell(load + " --op set --requests 3000 --keyspace 20 --value-size 5 2>&1");
  ASSERT_EQ(puts.status, 0) << puts.text;
  EXPECT_NE(puts.text.find("set: 3000 requests, 8 clients, 5-byte values"), std::string::npos)
      << puts.text;
  EXPECT_NE(puts.text.find("0 misses, 0 errors"), std::string::npos) << puts.text;
  // Every key of the 20 was written (3,000 draws), with the tool's value.
  Output scan = Enoki("kv scan bench --node " + endpoint);
  ASSERT_EQ(scan.status, 0) << scan.text;
  EXPECT_EQ(std::count(scan.text.begin(), scan.text.end(), '\n'), 20) << scan.text;
  EXPECT_NE(scan.text.find("key:7\txxxxx\n"), std::string::npos) << scan.text;

  Output gets = RunShell(load + " --op get --requests 2000 --keyspace 20 2>&1");
  ASSERT_EQ(gets.status, 0) << gets.text;
  EXPECT_NE(gets.text.find("get: 2000 requests"), std::string::npos) << gets.text;
  EXPECT_NE(gets.text.find("0 misses, 0 errors"), std::string::npos) << gets.text;

  // 1,000 increments of 10 counters add up to 1,000.
  Output calls = RunShell(load +
                          " --op invoke --function increment --keygroup counters --requests 1000 "
                          "--keyspace 10 2>&1");
  ASSERT_EQ(calls.status, 0) << calls.text;
  Output counters = Enoki("kv scan counters --node " + endpoint);
  ASSERT_EQ(counters.status, 0) << counters.text;
  std::regex value("\t([0-9]+)\n");
  int sum = 0;
  for (auto it = std::sregex_iterator(counters.text.begin(), counters.text.end(), value);
       it != std::sregex_iterator(); ++it) {
    sum += std::stoi((*it)[1]);
  }
  EXPECT_EQ(sum, 1000) << counters.text;

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Pointed at an endpoint where nothing listens, the load generator says so before its set-up
// (which would wait 10 s for an answer and then only say that none came).
TEST(StatusTest, TheLoadGeneratorSaysAtOnceThatNothingListens) {
  Output out = RunShell(std::string(ENOKI_KVLOAD) + " --node 127.0.0.1:1 --requests 10 2>&1");
  EXPECT_EQ(out.status, 1) << out.text;
  EXPECT_EQ(out.text,
            "enoki-kvload: cannot reach the node: nothing listens at 127.0.0.1:1 (connection "
            "refused)\n");
}

}  // namespace
}  // namespace enoki
