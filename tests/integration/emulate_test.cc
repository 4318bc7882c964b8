// `enoki emulate` end to end: real node processes with emulated links (the user-space shaper, and
// kernel netem where this process is root and the kernel has sch_netem: scripts/test-netem.sh
// runs it in a VM that has), a workload, and a timeline with a partition and a crash. The edge
// keeps serving from its replica throughout; afterwards both replicas hold the same data, and the
// results database holds every request and event.

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

#include "adapters/client.h"
#include "adapters/curve.h"
#include "adapters/netem.h"
#include "testbed/emulation.h"
#include "testbed/report.h"
#include "testbed/simulation.h"
#include "tests/integration/results_query.h"

namespace enoki::testbed {

// How GoogleTest names a backend in test names.
void PrintTo(Links links, std::ostream* os) { *os << LinksName(links); }

namespace {

using testing::Query;

// Options for a run of this build's binary into a fresh results folder `dir` (removed first).
EmulateOptions Options(const std::filesystem::path& dir, Links links = Links::kShaper) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  EmulateOptions options;
  options.enoki_binary = ENOKI_BINARY;
  options.results_dir = dir.string();
  options.links = links;
  return options;
}

class EmulateTest : public ::testing::TestWithParam<Links> {};

TEST_P(EmulateTest, PartitionAndCrashThenReplicasAgree) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/partition_crash.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto links = ChooseLinks(GetParam(), *scenario);
  if (!links.ok()) GTEST_SKIP() << links.status().message();
  std::string backend = LinksName(GetParam());
  auto dir = std::filesystem::temp_directory_path() / ("enoki-emulate-" + std::to_string(getpid()));
  auto result = Emulate(*scenario, Options(dir, links->links), [] { return false; });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_FALSE(result->interrupted);
  auto report = ReadReport(result->database);
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  // 2 callers x 40/s x 4 s; the edge answered every one, partition and crash notwithstanding.
  ASSERT_EQ(report->workloads.size(), 1u);
  const WorkloadSummary& w = report->workloads[0];
  EXPECT_NEAR(static_cast<double>(w.count), 320, 4);
  EXPECT_EQ(w.errors, 0);
  EXPECT_NEAR(w.ok_per_s, 80, 8);  // the open loops' 2 x 40/s
  // Bodies "cN-M" (4 or 5 bytes) go out, counts (1 or 2 digits) come back: 5 to 7 bytes each.
  EXPECT_GE(w.ok_mb_per_s * 1e6 / w.ok_per_s, 5.0);
  EXPECT_LE(w.ok_mb_per_s * 1e6 / w.ok_per_s, 7.0);
  EXPECT_GE(w.ms.p50, 2.0);  // the client-edge round trip is the floor
  // netem runs in a software-emulated VM here, where every hop costs much more than on real cores.
  EXPECT_LT(w.ms.p50, GetParam() == Links::kNetem ? 10.0 : 5.0);

  ASSERT_EQ(report->keygroups.size(), 1u);
  const KeygroupCheck& k = report->keygroups[0];
  EXPECT_TRUE(k.converged);
  ASSERT_EQ(k.replicas.size(), 2u);
  EXPECT_EQ(k.replicas[0].items, 40);  // c0-0 .. c1-19: every key was written
  EXPECT_EQ(k.replicas[1].items, k.replicas[0].items);
  EXPECT_EQ(k.replicas[1].digest, k.replicas[0].digest);

  const std::string& db = result->database;
  EXPECT_EQ(Query(db, "SELECT count(*) FROM requests"), std::to_string(w.count));
  EXPECT_EQ(Query(db,
                  "SELECT group_concat(kind, ',') FROM (SELECT kind FROM events ORDER BY "
                  "at_ns)"),
            "partition,heal,crash,restart");
  EXPECT_EQ(Query(db, "SELECT mode || ' ' || backend || ' ' || seed FROM run"),
            "emulate " + backend + " 3");
  EXPECT_EQ(Query(db, "SELECT delay_us FROM links WHERE src = 'edge' AND dst = 'cloud'"),
            "10000.0");
  EXPECT_EQ(Query(db, "SELECT min(converged) FROM replicas"), "1");
  // The traces: each attempt of an increment read and wrote its key at the edge's replica, and one
  // put per request succeeded (a caller's next request may overlap its last one on the same key:
  // then the conditional put fails and the attempt is repeated); every write was made at the
  // edge; the cloud applied them no sooner than the link's 10 ms - 1 ms after the edge's commit,
  // and at least the last version of each of the 40 keys.
  std::string gets = Query(db, "SELECT count(*) FROM kv_ops WHERE kind = 'get' AND local = 1");
  EXPECT_EQ(Query(db, "SELECT count(*) FROM kv_ops WHERE kind = 'put' AND local = 1"), gets);
  EXPECT_EQ(Query(db, "SELECT count(*) FROM kv_ops WHERE kind = 'put' AND status = 'OK'"),
            std::to_string(w.count));
  EXPECT_EQ(Query(db, "SELECT count(*) FROM kv_ops"), std::to_string(2 * std::stoll(gets)));
  EXPECT_EQ(Query(db, "SELECT count(*) FROM writes WHERE origin = 1 AND node = 'edge'"),
            std::to_string(w.count));
  EXPECT_EQ(Query(db, "SELECT count(*) FROM writes WHERE origin = 1 AND node != 'edge'"), "0");
  EXPECT_GE(std::stoll(Query(db, "SELECT min(lag_ns) FROM replica_applies")), 9000000);
  EXPECT_GE(std::stoll(Query(db, "SELECT count(*) FROM replica_applies WHERE replica = 'cloud'")),
            40);
  // The reads that found a value; at the only writer's replica, never stale.
  EXPECT_EQ(Query(db, "SELECT count(*) FROM read_staleness"),
            Query(db, "SELECT count(*) FROM kv_ops WHERE kind = 'get' AND status = 'OK'"));
  EXPECT_EQ(Query(db, "SELECT max(staleness_ns) FROM read_staleness"), "0");
  ASSERT_EQ(report->replication.size(), 1u);
  EXPECT_GE(report->replication[0].lag_ms.p50, 9.0);
  // `enoki report` prints the same, and exports the requests.
  std::string text = FormatReport(*report);
  EXPECT_NE(text.find("partition-crash: emulate, " + backend + " links, seed 3"), std::string::npos)
      << text;
  EXPECT_NE(text.find("keygroup counts: edge 40 items; cloud 40 items; replicas agree"),
            std::string::npos)
      << text;
  auto csv = dir / "requests.csv";
  ASSERT_TRUE(ExportRequestsCsv(db, csv.string()).ok());
  std::ifstream in(csv);
  std::string header, first;
  std::getline(in, header);
  std::getline(in, first);
  EXPECT_EQ(header.substr(0, 24), "workload,client,caller,s");
  EXPECT_EQ(first.substr(0, 18), "\"writes\",\"client\",");
  // Requests during the partition (1 s to 2 s) were served.
  EXPECT_NE(Query(db,
                  "SELECT count(*) FROM requests WHERE status = 'OK' AND start_ns BETWEEN "
                  "1100000000 AND 1900000000"),
            "0");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(EmulateLinksTest, AScenarioThatDropsMessagesRunsOnTheShaper) {
  auto scenario = ParseScenario(R"(name: drops
nodes: [{name: edge, tier: edge}, {name: c, tier: client}]
links: [{between: [c, edge], delay: 1ms, drop: 1%}]
)",
                                "drops.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto netem = ChooseLinks(Links::kNetem, *scenario);
  ASSERT_FALSE(netem.ok());
  EXPECT_EQ(netem.status().message(),
            "--links netem: the link between c and edge drops whole messages (drop), which only "
            "the shaper can (netem loses packets, and TCP retransmits them: use loss)");
  auto chosen = ChooseLinks(Links::kAuto, *scenario);
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(chosen->links, Links::kShaper);
  EXPECT_EQ(chosen->why,
            "auto: the link between c and edge drops whole messages (drop), which only the shaper "
            "can");
  // Loss alone is netem's to emulate (when the host has it).
  scenario->links[0].spec.drop = 0;
  scenario->links[0].spec.loss = 0.01;
  auto lossy = ChooseLinks(Links::kAuto, *scenario);
  ASSERT_TRUE(lossy.ok());
  EXPECT_EQ(lossy->links == Links::kNetem, adapters::NetemNetwork::Available().ok());
}

// A link that loses 5% of its packets (both ways, client-edge) fails no request, in either
// backend: TCP retransmits what netem loses, and the shaper models that (net::LinkModel); the
// requests whose message was lost are late by the retransmission timeout (202 ms on a 1 ms link),
// as the simulation of the same file says. The kernel's TCP recovers most of these losses sooner:
// a message 25 ms behind the lost one brings the selective acknowledgement that has it sent again
// at once (in the netem VM, 0 to 3 of the 240 were over 200 ms, 26 to 42 over 20 ms, in four
// runs); the model does not have that (yet), so netem is held to the losses showing at all.
TEST_P(EmulateTest, ALossyLinkFailsNoRequestItDelaysSome) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/lossy.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto links = ChooseLinks(GetParam(), *scenario);
  if (!links.ok()) GTEST_SKIP() << links.status().message();
  auto dir = std::filesystem::temp_directory_path() / ("enoki-lossy-" + std::to_string(getpid()));
  auto emulated = Emulate(*scenario, Options(dir / "emulated", links->links), [] { return false; });
  ASSERT_TRUE(emulated.ok()) << emulated.status().ToString();
  auto simulated = Simulate(*scenario, {(dir / "simulated").string(), 1, ""});
  ASSERT_TRUE(simulated.ok()) << simulated.status().ToString();
  std::vector<int> late;
  for (const std::string& db : {emulated->database, simulated->database}) {
    // 2 callers x 20/s x 6 s. P(a request or its answer lost) = 1 - 0.95^2, about 23 of them;
    // the requests behind a lost message on the link wait for it, and those sent within 2 ms
    // of it are late by over 200 ms too (77 in the simulation of seed 5).
    EXPECT_EQ(Query(db, "SELECT count(*) FROM requests"), "240") << db;
    EXPECT_EQ(Query(db, "SELECT count(*) FROM requests WHERE status != 'OK'"), "0") << db;
    bool kernel = db == emulated->database && links->links == Links::kNetem;
    late.push_back(std::stoi(Query(db, std::string("SELECT count(*) FROM requests WHERE end_ns - "
                                                   "start_ns > ") +
                                           (kernel ? "2e7" : "2e8"))));
    EXPECT_GE(late.back(), 8) << db;
    EXPECT_LE(late.back(), 120) << db;
    // Within the retransmission's reach: one timeout (202 ms), or a few for a request lost
    // again or waiting behind another.
    EXPECT_LT(std::stoll(Query(db, "SELECT max(end_ns - start_ns) FROM requests")), 2000000000)
        << db;
  }
  // The shaper and the simulation run one model over one schedule (79 and 77 late when this
  // was written); netem is the kernel's TCP, compared with them in bench/fidelity.sh.
  if (links->links == Links::kShaper) {
    EXPECT_NEAR(late[0], late[1], 15);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Over netem, a caller's connection to its node can take seconds to be made on a very lossy link
// (20%: lost SYNs, lost handshake segments), and a caller's socket refuses to send until it is:
// the workloads start only once every caller is connected (Driver::Mode::AwaitCallers), so no
// request fails. Before, the first requests of the callers whose handshakes were still going
// failed UNAVAILABLE (48 and 58 requests in two runs of a 19-edge case in the netem VM).
TEST(EmulateNetemTest, CallersOverAVeryLossyLinkStartOnlyOnceConnected) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/lossy_connect.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto links = ChooseLinks(Links::kNetem, *scenario);
  if (!links.ok()) GTEST_SKIP() << links.status().message();
  auto dir =
      std::filesystem::temp_directory_path() / ("enoki-lossy-connect-" + std::to_string(getpid()));
  auto emulated = Emulate(*scenario, Options(dir, links->links), [] { return false; });
  ASSERT_TRUE(emulated.ok()) << emulated.status().ToString();
  EXPECT_EQ(Query(emulated->database, "SELECT count(*) FROM requests"), "150");
  EXPECT_EQ(Query(emulated->database,
                  "SELECT count(*) || ' ' || coalesce(group_concat(DISTINCT error), '') FROM "
                  "requests WHERE status != 'OK'"),
            "0 ");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// security: curve: every node gets a key pair and the run's driver and callers are the one
// client of their access files. While the run goes on, a client with a key of its own knocks at
// the edge: it gets no answer, and the edge's log names its key as refused (so the node ran CURVE
// with its ZAP handler); the run itself is served end to end, through a partition and a restart.
// The keys do not outlive the run; the nodes' logs (at info) and their functions' logs do.
TEST(EmulateSecureTest, ACurveScenarioIsServedAndItsNodesRefuseUnknownKeys) {
  namespace fs = std::filesystem;
  std::string path = std::string(ENOKI_TEST_SCENARIOS) + "/partition_crash.yaml";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  yaml.insert(yaml.find("seed:"), "security: curve\n");
  auto scenario = ParseScenario(yaml, path);
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  ASSERT_TRUE(scenario->curve);
  auto dir = fs::temp_directory_path() / ("enoki-emulate-curve-" + std::to_string(getpid()));
  EmulateOptions options = Options(dir);

  std::atomic<bool> finished{false};
  std::string stranger;  // the knocking client's public key, once it knocked
  core::Status answer;
  std::thread knock([&] {
    for (int i = 0; i < 200 && !finished && stranger.empty(); ++i) {  // at most 10 s
      std::error_code ec;
      for (const auto& run : fs::directory_iterator(dir, ec)) {
        fs::path pub = run.path() / "keys" / "edge.pub";
        fs::path socket = run.path() / "sockets" / "edge";
        if (!fs::exists(pub) || !fs::exists(socket)) continue;
        auto own = adapters::GenerateKeyPair();
        auto node_key = adapters::ReadPublicKey(pub.string());
        if (!own.ok() || !node_key.ok()) continue;
        zmq::context_t context;
        adapters::Client client(context, "ipc://" + socket.string(), std::chrono::milliseconds(500),
                                "edge", adapters::ClientKeys{*own, *node_key});
        answer = client.KeygroupInfo("counts").status();
        stranger = own->public_key;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  auto result = Emulate(*scenario, options, [] { return false; });
  finished = true;
  knock.join();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_FALSE(stranger.empty()) << "the edge's socket and key never appeared in " << dir;
  EXPECT_EQ(answer.code(), core::Code::kDeadlineExceeded) << answer.ToString();

  auto report = ReadReport(result->database);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->workloads.size(), 1u);
  EXPECT_NEAR(static_cast<double>(report->workloads[0].count), 320, 4);
  EXPECT_EQ(report->workloads[0].errors, 0);
  ASSERT_EQ(report->keygroups.size(), 1u);
  EXPECT_TRUE(report->keygroups[0].converged);
  EXPECT_EQ(report->keygroups[0].replicas[0].items, 40);
  std::string edge_log, functions_log;
  for (const auto& run : fs::directory_iterator(dir)) {
    if (!run.is_directory()) continue;
    EXPECT_FALSE(fs::exists(run.path() / "keys"));
    for (auto [file, text] :
         {std::pair{"edge.log", &edge_log}, std::pair{"edge.functions.log", &functions_log}}) {
      std::ifstream log(run.path() / "logs" / file);
      std::stringstream lines;
      lines << log.rdbuf();
      *text += lines.str();
    }
  }
  EXPECT_NE(edge_log.find("with unknown key " + stranger), std::string::npos) << edge_log;
  EXPECT_NE(edge_log.find(" info [edge] started: "), std::string::npos) << edge_log;
  EXPECT_NE(functions_log.find(" #0 deployed native:"), std::string::npos) << functions_log;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(EmulateArrivalsTest, PoissonGapsAreExponentialPeriodicOnesFixed) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/arrivals.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir =
      std::filesystem::temp_directory_path() / ("enoki-arrivals-" + std::to_string(getpid()));
  auto result = Emulate(*scenario, Options(dir), [] { return false; });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  // One caller each, mean gap 5 ms. A periodic caller's k-th send is due at phase + k * 5 ms; a
  // hiccup of the host makes a send late but never early, and the next one is due on the same
  // schedule. So its sends' offsets from k * 5 ms, less their least, are its lateness: mostly
  // well under 1 ms, however loaded the host (a timing bound on the gaps themselves failed on a
  // busy CI host). A Poisson caller's offsets are a random walk, tens of ms from their least.
  struct Arrivals {
    size_t n = 0;
    double mean_gap_ms = 0, cv = 0, near = 0, median_lateness_ms = 0;
  };
  auto arrivals = [&](const std::string& workload) {
    std::istringstream in(Query(result->database,
                                "SELECT group_concat(start_ns, ' ') FROM (SELECT start_ns FROM "
                                "requests WHERE workload = '" +
                                    workload + "' ORDER BY seq)"));
    std::vector<double> starts;
    for (double t; in >> t;) starts.push_back(t);
    Arrivals a;
    a.n = starts.size();
    if (a.n < 2) return a;
    std::vector<double> gaps, offsets;
    for (size_t k = 0; k < a.n; ++k) {
      offsets.push_back(starts[k] - static_cast<double>(k) * 5e6);
      if (k > 0) gaps.push_back(starts[k] - starts[k - 1]);
    }
    double sum = 0, square = 0, near = 0;
    for (double g : gaps) {
      sum += g;
      square += g * g;
      near += std::abs(g - 5e6) < 5e5 ? 1 : 0;
    }
    double mean = sum / static_cast<double>(gaps.size());
    a.mean_gap_ms = mean / 1e6;
    a.cv = std::sqrt(square / static_cast<double>(gaps.size()) - mean * mean) / mean;
    a.near = near / static_cast<double>(gaps.size());
    double least = *std::min_element(offsets.begin(), offsets.end());
    std::nth_element(offsets.begin(), offsets.begin() + offsets.size() / 2, offsets.end());
    a.median_lateness_ms = (offsets[offsets.size() / 2] - least) / 1e6;
    return a;
  };
  Arrivals periodic = arrivals("periodic"), poisson = arrivals("poisson");
  EXPECT_NEAR(static_cast<double>(periodic.n), 600, 1);
  EXPECT_NEAR(periodic.mean_gap_ms, 5.0, 0.05);
  EXPECT_LT(periodic.median_lateness_ms, 1.0) << "gaps within 0.5 ms of 5 ms: " << periodic.near;
  EXPECT_NEAR(static_cast<double>(poisson.n), 600, 4 * std::sqrt(600));  // a Poisson count's spread
  EXPECT_NEAR(poisson.mean_gap_ms, 5.0, 0.6);
  EXPECT_NEAR(poisson.cv, 1.0, 0.2);
  EXPECT_LT(poisson.near, 0.2);  // of exponential gaps of mean 5 ms, about 7% lie within 0.5 ms
  EXPECT_GT(poisson.median_lateness_ms, 10.0);
  std::cout << "periodic: median lateness " << periodic.median_lateness_ms << " ms, near "
            << periodic.near << "; poisson: offsets' median " << poisson.median_lateness_ms
            << " ms, cv " << poisson.cv << "\n";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Issue 17's one schedule per seed: every caller draws its arrivals and its bodies from streams
// of its own, so an emulation and a simulation of one seed send the same bodies in the same order
// from every caller, and open-loop callers at the same times from their workload's start (the
// emulation's up to its timers' lateness later), whatever order the callers' sends interleave in.
TEST(EmulateScheduleTest, OneSeedGivesEveryCallerTheSameScheduleAndBodiesInBothModes) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/schedule.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir =
      std::filesystem::temp_directory_path() / ("enoki-schedule-" + std::to_string(getpid()));
  auto emulated = Emulate(*scenario, Options(dir / "emulated"), [] { return false; });
  ASSERT_TRUE(emulated.ok()) << emulated.status().ToString();
  auto simulated = Simulate(*scenario, {(dir / "simulated").string(), 1, ""});
  ASSERT_TRUE(simulated.ok()) << simulated.status().ToString();
  // (workload, caller, seq) -> start, answer's digest (the echoed body).
  using Key = std::tuple<std::string, int, int64_t>;
  auto requests = [](const std::string& db) {
    std::map<Key, std::pair<int64_t, std::string>> out;
    std::istringstream rows(Query(db,
                                  "SELECT group_concat(workload || ' ' || caller || ' ' || seq || "
                                  "' ' || start_ns || ' ' || response_digest, ' ') FROM requests "
                                  "WHERE status = 'OK'"));
    std::string workload, digest;
    int caller;
    int64_t seq, start;
    while (rows >> workload >> caller >> seq >> start >> digest) {
      out[{workload, caller, seq}] = {start, digest};
    }
    return out;
  };
  auto a = requests(emulated->database), b = requests(simulated->database);
  ASSERT_GT(b.size(), 100u);
  size_t both = 0;
  double latest_ms = 0;
  for (const auto& [key, sim] : b) {
    auto emu = a.find(key);
    if (emu == a.end()) continue;  // the last of a duration, that a late timer may not send
    ++both;
    EXPECT_NE(sim.second, "0");  // every answer digested (schedule.yaml's stale_against)
    EXPECT_EQ(emu->second.second, sim.second)
        << std::get<0>(key) << " caller " << std::get<1>(key) << " seq " << std::get<2>(key);
    if (std::get<0>(key) == "closed") continue;  // its sends follow the answers' times
    double late_ms = static_cast<double>(emu->second.first - sim.first) / 1e6;
    latest_ms = std::max(latest_ms, std::abs(late_ms));
  }
  // Every request of one run in the other but a duration's last few.
  EXPECT_GE(both + 6, std::max(a.size(), b.size()));
  // Open loops: the same times, but for how late the emulation's driver ran its timers in this
  // run (a stalling host's went past the fixed 5 ms this test had) and 2 ms more (on the
  // development machine, 11 runs of 12 were 0.9 to 2.0 ms apart, and one 6.3 ms with its
  // driver's timers 6.3 ms late).
  double driver_late_ms =
      std::stod(Query(emulated->database,
                      "SELECT timer_max_ns FROM processes WHERE process = 'driver'")) /
      1e6;
  EXPECT_LT(latest_ms, 2.0 + driver_late_ms);
  std::cout << both << " requests alike in both runs; open-loop sends at most " << latest_ms
            << " ms apart; the driver's timers at most " << driver_late_ms << " ms late\n";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Every process of an emulation says how it kept up: a row in `processes` for the driver and for
// each node, with timers that ran, shaped messages handed on (the callers' requests and answers,
// the replication between the nodes), CPU time and the host's busy share. How late they were
// depends on the host and is not judged here.
TEST(EmulateLoadsTest, EveryProcessRecordsItsLatenessAndCpu) {
  auto scenario = ParseScenario(
      "name: loads\nseed: 3\nwarmup: 0s\n"
      "nodes: [{name: edge, tier: edge}, {name: cloud, tier: cloud}, {name: client, tier: "
      "client}]\n"
      "tier_links: {client-edge: {delay: 1ms}, edge-cloud: {delay: 5ms}, client-cloud: {delay: "
      "5ms}}\n"
      "keygroups: [{name: k, replicas: [edge, cloud]}]\n"
      "functions: [{name: f, nodes: edge, handler: replication, keygroup: k}]\n"
      "workloads: [{name: w, client: client, function: f, node: edge, callers: 2, rate: 20/s,\n"
      "             duration: 2s, body: 'b{seq}'}]\n",
      "loads.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir = std::filesystem::temp_directory_path() / ("enoki-loads-" + std::to_string(getpid()));
  auto result = Emulate(*scenario, Options(dir, Links::kShaper), [] { return false; });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto report = ReadReport(result->database);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->workloads.size(), 1u);
  EXPECT_GT(report->workloads[0].count, 60);
  std::map<std::string, proto::LoopStats> by_process;
  for (const auto& p : report->processes) {
    EXPECT_EQ(p.role, p.process == "driver" ? "driver" : "node") << p.process;
    by_process[p.process] = p.stats;
  }
  ASSERT_EQ(by_process.size(), 3u);
  for (const auto& name : {"driver", "edge", "cloud"}) {
    ASSERT_TRUE(by_process.contains(name)) << name;
    const proto::LoopStats& l = by_process[name];
    // The window: from the workloads' start to after the replica check, so at least the 2 s of
    // the workload, and no longer than the whole run.
    EXPECT_GE(l.window_ns(), 1'900'000'000) << name;
    EXPECT_LT(l.window_ns(), 60'000'000'000) << name;
    EXPECT_GT(l.timers().count(), 0u) << name;
    EXPECT_GT(l.deliveries().count(), 0u) << name;
    for (const proto::Lateness& late : {l.timers(), l.deliveries()}) {
      EXPECT_GE(late.p50_ns(), 0) << name;
      EXPECT_LE(late.p50_ns(), late.p99_ns()) << name;
      EXPECT_LE(late.p99_ns(), late.max_ns()) << name;
    }
    EXPECT_GT(l.cpu_ns(), 0) << name;
    EXPECT_LE(l.cpu_ns(), l.window_ns() * static_cast<int64_t>(l.host_cores()) * 2) << name;
    EXPECT_GT(l.host_busy(), 0) << name;
    EXPECT_LE(l.host_busy(), 1) << name;
    EXPECT_GE(l.host_cores(), 1u) << name;
    EXPECT_FALSE(l.host().empty()) << name;
  }
  // Each of the edge's requests (80) came over a shaped link, and so did each answer to a caller.
  EXPECT_GE(by_process["edge"].deliveries().count(), 80u);
  EXPECT_GE(by_process["driver"].deliveries().count(), 80u);
  std::string text = FormatReport(*report);
  EXPECT_NE(text.find("how late each process ran its timers"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  cloud "), std::string::npos) << text;
  std::cout << text;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// The pid of a process with an argument that starts with `prefix` and ends with `suffix`, or 0.
pid_t FindProcess(const std::string& prefix, const std::string& suffix) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    for (std::string a; std::getline(in, a, '\0');) {
      if (a.size() >= prefix.size() + suffix.size() && a.starts_with(prefix) &&
          a.ends_with(suffix)) {
        return static_cast<pid_t>(std::stol(name));
      }
    }
  }
  return 0;
}

TEST(EmulateNodeDiesTest, ANodeThatDiesIsAnErrorOfTheRunWhichGoesOn) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/arrivals.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir = std::filesystem::temp_directory_path() / ("enoki-dies-" + std::to_string(getpid()));
  // About 1 s into the 3 s run (the set-up takes a few hundred ms), the edge node is killed from
  // outside, as the OOM killer would.
  std::atomic<bool> done = false, killed = false;
  std::thread killer([&] {
    const std::string prefix = dir.string() + "/", data_dir = "/data/edge";  // its --data-dir
    pid_t pid = 0;
    for (int i = 0; i < 200 && pid == 0 && !done; ++i) {  // waits at most 20 s for it to start
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      pid = FindProcess(prefix, data_dir);
    }
    for (int i = 0; i < 15 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Still the node (not a pid reused since): its command line says so.
    if (!done && pid > 0 && FindProcess(prefix, data_dir) == pid)
      killed = ::kill(pid, SIGKILL) == 0;
  });
  auto result = Emulate(*scenario, Options(dir, Links::kShaper), [] { return false; });
  done = true;
  killer.join();
  ASSERT_TRUE(killed) << "the edge node's process was not found";
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto report = ReadReport(result->database);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_NE(report->errors[0].detail.find("node edge was killed by signal 9"), std::string::npos)
      << report->errors[0].detail;
  EXPECT_GT(report->errors[0].at_ns, 0);
  EXPECT_LT(report->errors[0].at_ns, 3'000'000'000);
  // The requests before the death were served, those after it failed; the run went on to its end.
  for (const auto& w : report->workloads) {
    EXPECT_GT(w.count - w.errors, 0) << w.name;
    EXPECT_GT(w.errors, 0) << w.name;
  }
  EXPECT_NE(FormatReport(*report).find("ERROR at "), std::string::npos);
  ASSERT_EQ(report->keygroups.size(), 1u);
  EXPECT_EQ(report->keygroups[0].replicas[0].error, "down");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// One cloud and 99 edges, each edge with a keygroup of its own (replicated to the cloud) and a
// function on it that one caller calls: a set-up of 100 node processes started at once, every
// one of which must be reached at its own endpoint (issue 21: with ports picked by the
// orchestrator and bound later by the nodes, 2 of 5 runs of 82 nodes talked to the wrong node).
std::string HundredNodes() {
  constexpr int kEdges = 99;
  std::ostringstream y;
  y << "name: hundred\nseed: 1\nnodes:\n  - {name: cloud, tier: cloud}\n"
    << "  - {name: client, tier: client}\n";
  for (int i = 1; i <= kEdges; ++i) y << "  - {name: edge" << i << ", tier: edge}\n";
  y << "tier_links:\n  client-edge: {delay: 1ms}\n  edge-cloud: {delay: 5ms}\n"
    << "  edge-edge: {delay: 5ms}\n  client-cloud: {delay: 5ms}\nkeygroups:\n";
  for (int i = 1; i <= kEdges; ++i) {
    y << "  - {name: kg" << i << ", replicas: [edge" << i << ", cloud]}\n";
  }
  y << "functions:\n";
  for (int i = 1; i <= kEdges; ++i) {
    y << "  - {name: f" << i << ", nodes: edge" << i << ", handler: replication, keygroup: kg" << i
      << "}\n";
  }
  y << "workloads:\n";
  for (int i = 1; i <= kEdges; ++i) {
    y << "  - {name: w" << i << ", client: client, function: f" << i << ", node: edge" << i
      << ", callers: 1, rate: 4/s, requests: 2, body: 'edge" << i << "'}\n";
  }
  return y.str();
}

TEST(EmulateManyNodesTest, HundredNodesStartedAtOnceTenTimesReachTheirOwnEndpoints) {
  auto scenario = ParseScenario(HundredNodes(), "hundred.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir = std::filesystem::temp_directory_path() / ("enoki-hundred-" + std::to_string(getpid()));
  for (int run = 0; run < 10; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    auto result = Emulate(*scenario, Options(dir), [] { return false; });
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    auto report = ReadReport(result->database);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    // A request that reached another node than its own is refused there, and an answer from
    // another node is an error event: both would show here.
    for (const auto& e : report->errors) ADD_FAILURE() << e.detail;
    ASSERT_EQ(report->workloads.size(), 99u);
    for (const auto& w : report->workloads) {
      EXPECT_EQ(w.count, 2) << w.name;
      EXPECT_EQ(w.errors, 0) << w.name;
    }
    ASSERT_EQ(report->keygroups.size(), 99u);
    for (const auto& k : report->keygroups) {
      EXPECT_TRUE(k.converged) << k.keygroup;
      ASSERT_EQ(k.replicas.size(), 2u) << k.keygroup;
      EXPECT_EQ(k.replicas[0].items, 1) << k.keygroup;  // the key "counter"
    }
    if (::testing::Test::HasFailure()) break;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

INSTANTIATE_TEST_SUITE_P(Backends, EmulateTest, ::testing::Values(Links::kShaper, Links::kNetem),
                         [](const auto& info) { return std::string(LinksName(info.param)); });

}  // namespace
}  // namespace enoki::testbed
