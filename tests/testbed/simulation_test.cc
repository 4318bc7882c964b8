// `enoki simulate`: the partition-and-crash scenario of the emulation test in virtual time, its
// replicas converged, and two runs of one seed giving the same database byte for byte, also when
// the machine is busy; compute costs in virtual time; the calibration file measured once and
// reused.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "testbed/calibration.h"
#include "testbed/plots.h"
#include "testbed/report.h"
#include "testbed/simulation.h"

namespace enoki::testbed {
namespace {

std::string Bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::filesystem::path TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

// The quick example simulated into `dir`, with fixed costs (no calibration: the same on every
// machine).
core::Result<SimulationResult> SimulateQuickExample(const std::filesystem::path& dir) {
  auto s = LoadScenario(std::string(ENOKI_SCENARIOS) + "/examples/quick.yaml");
  if (!s.ok()) return s.status();
  s->commit_cost = sim::CostModel::Fixed(std::chrono::microseconds(20));
  for (auto& f : s->functions) f.cost = sim::CostModel::Fixed(std::chrono::microseconds(150));
  return Simulate(*s, {dir.string(), 1, ""});
}

TEST(SimulationTest, PartitionAndCrashConvergeAndRunsRepeatByteForByte) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/partition_crash.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir = TempDir("enoki-simulate");
  std::string calibration = (dir / "calibration.tsv").string();  // measured by the first run
  std::string first, second;
  for (auto* out : {&first, &second}) {
    auto sub = dir / (out == &first ? "a" : "b");
    auto run = Simulate(*scenario, {sub.string(), 1, calibration});
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_GT(run->events, 1000u);
    EXPECT_GE(run->virtual_time, std::chrono::seconds(4));  // the workload's length at least
    *out = run->database;
  }
  EXPECT_EQ(Bytes(first), Bytes(second));
  EXPECT_GT(Bytes(first).size(), 10000u);

  auto report = ReadReport(first);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->run.mode, "simulate");
  ASSERT_EQ(report->workloads.size(), 1u);
  const WorkloadSummary& w = report->workloads[0];
  EXPECT_NEAR(static_cast<double>(w.count), 320, 4);  // 2 callers x 40/s x 4 s
  EXPECT_EQ(w.errors, 0);  // the edge serves throughout the partition and the crash
  // The client-edge round trip plus the calibrated costs: the function's and its commit's, and
  // the wake-up of a node idle 1 ms or more (this one, at 80 requests/s, most of the time).
  ASSERT_EQ(report->costs.size(), 3u);
  EXPECT_EQ(report->costs[1].what, "commit");
  EXPECT_EQ(report->costs[1].source.rfind("calibrated: ", 0), 0u) << report->costs[1].source;
  EXPECT_EQ(report->costs[2].what, "wake-up (a node idle 1 ms or more)");
  EXPECT_EQ(report->costs[2].source, report->costs[1].source);
  EXPECT_EQ(report->costs[2].model.percentiles.size(), 101u);
  // Drawn from the measured distributions: the median request takes about the medians.
  ASSERT_EQ(report->costs[0].model.percentiles.size(), 101u);
  double costs = core::ToMillis(report->costs[0].model.mean + report->costs[1].model.mean +
                                report->costs[2].model.mean);
  EXPECT_GE(w.ms.p50, 2.0 + 0.5 * costs);
  // A request's own costs are below twice their mean half the time (Markov); the two callers'
  // requests meet at the edge now and then, one waiting for the other's (with the costs an ASan
  // build measures, the median request took 2.01 times the costs once).
  EXPECT_LT(w.ms.p50, 2.1 + 3 * costs) << "costs' means: " << costs << " ms";
  ASSERT_EQ(report->keygroups.size(), 1u);
  EXPECT_TRUE(report->keygroups[0].converged);
  EXPECT_EQ(report->keygroups[0].replicas[0].items, 40);
  // `enoki report A.db B.db`: the two runs side by side, equal.
  std::string both = FormatComparison(*report, *ReadReport(second));
  char row[128];
  std::snprintf(row, sizeof row, "%10.3f %10.3f %7.3f", w.ms.p50, w.ms.p50, 1.0);
  EXPECT_NE(both.find("writes "), std::string::npos) << both;
  EXPECT_NE(both.find(row), std::string::npos) << both;
  std::filesystem::remove_all(dir);
}

// Virtual time owes nothing to the machine's speed: a run while every core is busy spinning
// (so that it takes longer) writes the same database as a run on a quiet machine.
TEST(SimulationTest, VirtualTimeIsIndependentOfTheMachinesSpeed) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/partition_crash.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir = TempDir("enoki-simulate-speed");
  std::string calibration = (dir / "calibration.tsv").string();
  auto quiet = Simulate(*scenario, {(dir / "quiet").string(), 1, calibration});
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i) {
    spinners.emplace_back([&stop] {
      volatile uint64_t x = 0;
      while (!stop.load(std::memory_order_relaxed)) x = x + 1;
    });
  }
  auto busy = Simulate(*scenario, {(dir / "busy").string(), 1, calibration});
  stop = true;
  for (auto& t : spinners) t.join();
  ASSERT_TRUE(busy.ok()) << busy.status().ToString();
  EXPECT_EQ(busy->events, quiet->events);
  EXPECT_EQ(busy->virtual_time, quiet->virtual_time);
  EXPECT_EQ(Bytes(busy->database), Bytes(quiet->database));
  std::filesystem::remove_all(dir);
}

// A fixed cost per invocation and per commit, in virtual time: two requests reach the node at
// the same instant; the second waits for the node's CPU.
TEST(SimulationTest, ComputeCostsDelayAnswersAndQueueOnTheNode) {
  auto s = ParseScenario(R"(name: costs
commit_cost: 1ms
nodes: [{name: e, tier: edge}, {name: c, tier: client}]
tier_links: {client-edge: {delay: 1ms}}
keygroups: [{name: k, replicas: e}]
functions:
  - {name: inc, nodes: e, handler: increment, keygroup: k, cost: 5ms}
  - {name: proc, nodes: e, runtime: process, handler: /bin/cat, keygroup: k, cost: 3ms}
workloads:
  - {name: two, client: c, function: inc, node: e, callers: 2, requests: 1}
  - {name: proc, client: c, function: proc, node: e, requests: 1, start: 1s}
)",
                         "costs.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto dir = TempDir("enoki-simulate-costs");
  auto run = Simulate(*s, {dir.string(), 1, (dir / "unused.tsv").string()});
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  // Every cost is the scenario's: nothing was calibrated.
  EXPECT_FALSE(std::filesystem::exists(dir / "unused.tsv"));
  auto report = ReadReport(run->database);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->workloads.size(), 2u);
  // Both arrive 1 ms in. The first's function runs from 1 to 6 ms, its commit from 6 to 7 on
  // the commit thread, while the CPU runs the second's function from 6 to 11 ms: the node answers
  // the first when its CPU is free (11 ms), 1 ms back: 12 ms. The second's commit, 11 to 12 ms,
  // then 1 ms back: 13 ms.
  EXPECT_DOUBLE_EQ(report->workloads[0].ms.p50, 12.0);
  EXPECT_DOUBLE_EQ(report->workloads[0].ms.max, 13.0);
  // The process function's stand-in: 1 + 3 + 1 ms, an empty answer.
  EXPECT_DOUBLE_EQ(report->workloads[1].ms.p50, 5.0);
  EXPECT_EQ(report->workloads[1].errors, 0);
  ASSERT_EQ(report->costs.size(), 3u);
  EXPECT_EQ(report->costs[0].what, "function inc at e");
  EXPECT_EQ(report->costs[0].model.mean, std::chrono::milliseconds(5));
  EXPECT_EQ(report->costs[2].source, "scenario");
  std::filesystem::remove_all(dir);
}

// security: curve costs a simulated node nothing unless the scenario gives security_cost; then
// each message it receives and each it sends keeps its CPU busy that long.
TEST(SimulationTest, CurveCostsOnlyWhatTheScenarioSays) {
  std::string topology = R"(
nodes: [{name: e, tier: edge}, {name: c, tier: client}]
tier_links: {client-edge: {delay: 1ms}}
commit_cost: 1ms
keygroups: [{name: k, replicas: e}]
functions: [{name: inc, nodes: e, handler: increment, keygroup: k, cost: 5ms}]
workloads: [{name: one, client: c, function: inc, node: e, requests: 1}]
)";
  auto p50 = [&](const std::string& security) {
    auto s = ParseScenario("name: curve" + topology + security, "curve.yaml");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    auto dir = TempDir("enoki-simulate-curve");
    auto run = Simulate(*s, {dir.string(), 1, (dir / "unused.tsv").string()});
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    auto report = ReadReport(run->database);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    std::filesystem::remove_all(dir);
    return report->workloads.at(0).ms.p50;
  };
  // 1 ms there, 5 ms of function, 1 ms of commit, 1 ms back.
  EXPECT_DOUBLE_EQ(p50(""), 8.0);
  EXPECT_DOUBLE_EQ(p50("security: curve\n"), 8.0);
  // The request's decryption and the answer's encryption: 2 x 250 us more.
  EXPECT_DOUBLE_EQ(p50("security: curve\nsecurity_cost: 250us\n"), 8.5);
}

// What `enoki calibrate` keeps of its repeats: of each cost, the repeat whose p99 is the median,
// so that one repeat's stall (the wake-up's 8.3 ms p99 below) is not kept.
TEST(SimulationTest, CalibrateKeepsTheRepeatWithTheMedianTailOfEachCost) {
  auto ms = [](double v) { return core::Duration(static_cast<int64_t>(v * 1e6)); };
  // 100 samples whose nearest-rank p50 and p99 are these.
  auto model = [&](double p50_ms, double p99_ms) {
    std::vector<core::Duration> samples(100, ms(p50_ms));
    samples[98] = samples[99] = ms(p99_ms);
    return sim::CostModel::Measured(samples);
  };
  std::vector<Calibration> repeats(3);
  const double wakeup_p99[] = {2.244, 8.320, 0.270};
  const double commit_p99[] = {0.058, 0.040, 0.028};
  const double function_p99[] = {0.7, 0.9, 0.5};
  for (int i = 0; i < 3; ++i) {
    repeats[i].measured = "repeat " + std::to_string(i);
    repeats[i].wakeup = model(0.1, wakeup_p99[i]);
    repeats[i].commit = model(0.02 + 0.001 * i, commit_p99[i]);
    repeats[i].functions["f"] = model(0.2, function_p99[i]);
    ASSERT_EQ(repeats[i].wakeup.percentiles[99], ms(wakeup_p99[i]));
  }
  Calibration kept = MedianRepeat(repeats);
  EXPECT_EQ(kept.measured, "repeat 2");
  EXPECT_EQ(kept.wakeup.percentiles[99], ms(2.244));  // repeat 0's
  EXPECT_EQ(kept.commit.percentiles[99], ms(0.040));  // repeat 1's, with its p50
  EXPECT_EQ(kept.commit.percentiles[50], ms(0.021));
  EXPECT_EQ(kept.functions.at("f").percentiles[99], ms(0.7));  // repeat 0's
  // Of two, the lower: not the stalled one.
  EXPECT_EQ(MedianRepeat({repeats[0], repeats[1]}).wakeup.percentiles[99], ms(2.244));
}

// The functions the simulation calibrates: native ones without a cost, each measured with the body
// of the first workload that calls it where it is deployed (another deployment of its name, or a
// workload calling it elsewhere, does not count).
TEST(SimulationTest, AFunctionIsCalibratedWithTheBodyOfItsFirstCallers) {
  auto s = ParseScenario(R"(name: c
nodes: [{name: e1, tier: edge}, {name: e2, tier: edge}, {name: c, tier: client}]
tier_links: {client-edge: {delay: 1ms}, edge-edge: {delay: 5ms}}
keygroups: [{name: k, replicas: [e1, e2]}]
functions:
  - {name: f, nodes: e1, handler: read, keygroup: k}
  - {name: f, nodes: e2, handler: write, keygroup: k}
  - {name: g, nodes: [e1, e2], handler: read, keygroup: k, cost: 1ms}
  - {name: h, nodes: e2, handler: read, keygroup: k}
workloads:
  - {name: w1, client: c, function: f, node: e2, requests: 1, body: to-e2}
  - {name: w2, client: c, function: g, node: e1, requests: 1, body: to-g}
  - {name: w3, client: c, function: f, node: e1, requests: 1, body: first-at-e1}
  - {name: w4, client: c, function: f, node: e1, requests: 1, body: second-at-e1}
)",
                         "c.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<std::optional<Probe>> probes = CalibratedFunctions(*s);
  ASSERT_EQ(probes.size(), 4u);
  ASSERT_TRUE(probes[0]);
  EXPECT_EQ(probes[0]->spec.handler(), "read");
  EXPECT_EQ(probes[0]->body, "first-at-e1");
  ASSERT_TRUE(probes[1]);
  EXPECT_EQ(probes[1]->spec.handler(), "write");
  EXPECT_EQ(probes[1]->body, "to-e2");
  EXPECT_FALSE(probes[2]);  // it has a cost
  ASSERT_TRUE(probes[3]);
  EXPECT_EQ(probes[3]->body, "");  // no workload calls it
}

// Calibration: measured where missing, written, then reused as it is.
TEST(SimulationTest, CalibrationIsMeasuredOnceAndReused) {
  auto dir = TempDir("enoki-calibration");
  std::string path = (dir / "sub" / "calibration.tsv").string();
  Probe probe;
  probe.spec.set_handler("movingaverage");
  probe.spec.set_runtime("native");
  (*probe.spec.mutable_params())["window"] = "10";
  probe.body = "c{caller} {int:0:100}";
  auto first = Calibrate(path, {probe});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string key = "movingaverage window=10 body=c{caller} {int:0:100}";
  EXPECT_EQ(CalibrationKey(probe), key);
  ASSERT_TRUE(first->functions.contains(key));
  const sim::CostModel& ma = first->functions[key];
  ASSERT_EQ(ma.percentiles.size(), 101u);
  EXPECT_GT(ma.mean, core::Duration(0));
  EXPECT_EQ(ma.mean, ma.percentiles[50]);
  EXPECT_TRUE(std::is_sorted(ma.percentiles.begin(), ma.percentiles.end()));
  EXPECT_GT(first->commit.mean, core::Duration(0));
  // The wake-up: measured with the function, a distribution (never below zero).
  ASSERT_EQ(first->wakeup.percentiles.size(), 101u);
  EXPECT_TRUE(std::is_sorted(first->wakeup.percentiles.begin(), first->wakeup.percentiles.end()));
  EXPECT_GE(first->wakeup.percentiles[0], core::Duration(0));
  EXPECT_GT(first->wakeup.percentiles[100], core::Duration(0));
  std::string written = Bytes(path);
  EXPECT_NE(written.find("\nwakeup\t"), std::string::npos) << written;
  auto again = Calibrate(path, {probe});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->functions, first->functions);
  EXPECT_EQ(again->commit, first->commit);
  EXPECT_EQ(again->wakeup, first->wakeup);
  EXPECT_EQ(Bytes(path), written);  // nothing measured again
  // A file from before the wake-up was measured: the wake-up alone is measured and added.
  std::string older;
  std::istringstream lines(written);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("wakeup\t")) older += line + "\n";
  }
  std::ofstream(path, std::ios::trunc) << older;
  auto added = Calibrate(path, {probe});
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(added->functions, first->functions);
  EXPECT_EQ(added->commit, first->commit);
  EXPECT_EQ(added->wakeup.percentiles.size(), 101u);
  EXPECT_NE(Bytes(path).find("\nwakeup\t"), std::string::npos);
  std::ofstream(path, std::ios::app) << "commit\tsoon\n";
  auto broken = Calibrate(path, {probe});
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message(),
            path + ":7: not a calibration line (remove the file to measure again)");
  std::filesystem::remove_all(dir);
}

// Rows of `sql` in `database`, one line each, columns separated by spaces.
std::string Rows(const std::string& database, const char* sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  std::string out;
  while (s != nullptr && sqlite3_step(s) == SQLITE_ROW) {
    for (int c = 0; c < sqlite3_column_count(s); ++c) {
      const unsigned char* text = sqlite3_column_text(s, c);
      out += (c == 0 ? "" : " ") + std::string(text ? reinterpret_cast<const char*>(text) : "-");
    }
    out += "\n";
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// The golden trace of a whole run (SimGrid style): the quick example with fixed costs, every
// request's start and end and every timeline event, in virtual time. Any change in what the
// simulation predicts (node, replication, link model, costs, driver) shows up as a diff.
// ENOKI_UPDATE_GOLDEN=1 rewrites it after a deliberate change; it depends on libstdc++'s random
// distributions.
TEST(SimulationTest, QuickExampleMatchesTheGoldenTrace) {
  auto dir = TempDir("enoki-simulate-golden");
  auto run = SimulateQuickExample(dir);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  std::string trace =
      Rows(run->database,
           "SELECT workload, caller, seq, start_ns, end_ns, status FROM requests ORDER BY rowid") +
      Rows(run->database, "SELECT at_ns, kind, detail FROM events ORDER BY rowid");
  EXPECT_GT(trace.size(), 10000u);
  std::string path = std::string(ENOKI_TEST_GOLDEN) + "/quick_run.txt";
  if (std::getenv("ENOKI_UPDATE_GOLDEN") != nullptr) std::ofstream(path) << trace;
  EXPECT_EQ(trace, Bytes(path)) << "golden file " << path;
  std::filesystem::remove_all(dir);
}

// One schedule per seed: every caller draws from streams of its own, so caller 0 of an open
// loop sends at the same times with the same bodies whether its workload has one caller or
// three (drawn from one stream for the workload, the other callers' draws would move its own).
TEST(SimulationTest, ACallersScheduleAndBodiesAreItsOwnWhateverTheOtherCallers) {
  auto caller0 = [](int callers, const std::string& name) {
    auto s = ParseScenario(
        "name: callers\nseed: 5\nnodes:\n  - {name: e, tier: edge}\n"
        "  - {name: c, tier: client}\ntier_links: {client-edge: {delay: 1ms}}\n"
        "keygroups: [{name: k, replicas: [e]}]\n"
        "functions: [{name: f, nodes: e, handler: echo, keygroup: k, cost: "
        "50us}]\ncommit_cost: 20us\nworkloads:\n  - {name: w, client: c, "
        "function: f, node: e, rate: 20/s, arrivals: poisson, duration: 2s, "
        "callers: " +
            std::to_string(callers) +
            ", body: \"{random:12}\", stale_against: v}\n"
            // (judged against writes so that the runs keep the answers' digests)
            "  - {name: v, client: c, function: f, node: e, requests: 1, body: x}\n",
        "callers.yaml");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    auto dir = TempDir("enoki-callers-" + name);
    auto run = Simulate(*s, {dir.string(), 1, ""});
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    sqlite3* db = nullptr;
    sqlite3_open(run->database.c_str(), &db);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT start_ns, response_digest FROM requests WHERE workload = 'w' "
                       "AND caller = 0 ORDER BY seq",
                       -1, &q, nullptr);
    std::vector<std::pair<int64_t, int64_t>> sends;
    while (sqlite3_step(q) == SQLITE_ROW) {
      sends.emplace_back(sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    std::filesystem::remove_all(dir);
    return sends;
  };
  auto alone = caller0(1, "one"), among = caller0(3, "three");
  EXPECT_GT(alone.size(), 20u);
  EXPECT_EQ(alone, among);
}

// `enoki report --plots`: the figures of a simulated run, as PNG and SVG files.
TEST(SimulationTest, PlotsOfARunAreWritten) {
  auto dir = TempDir("enoki-plots");
  auto run = SimulateQuickExample(dir);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  auto drawn = WritePlots(run->database, (dir / "plots").string());
  ASSERT_TRUE(drawn.ok()) << drawn.status().ToString();
  // Latency per workload and the replication to the cloud (lag, and the store-side staleness
  // of the reads: the quick example judges no reads against writes at the client).
  EXPECT_EQ(*drawn, (std::vector<std::string>{"latency_cdf", "latency_over_time",
                                              "store_staleness_cdf", "replication_lag"}));
  for (const auto& name : *drawn) {
    std::string png = Bytes((dir / "plots" / (name + ".png")).string());
    EXPECT_EQ(png.substr(0, 4), "\x89PNG") << name;
    EXPECT_GT(png.size(), 10000u) << name;
    EXPECT_NE(Bytes((dir / "plots" / (name + ".svg")).string()).find("<svg"), std::string::npos)
        << name;
  }
  // No read was stale: the staleness axis starts at 0 (matplotlib's SVG names each tick label
  // in a comment; U+2212 is its minus sign), not at -0.04.
  std::string staleness = Bytes((dir / "plots" / "store_staleness_cdf.svg").string());
  EXPECT_NE(staleness.find("<!-- 0.0 -->"), std::string::npos);
  EXPECT_EQ(staleness.find("<!-- \u2212"), std::string::npos);
  auto missing = WritePlots((dir / "none.db").string(), (dir / "plots").string());
  EXPECT_EQ(missing.status().message(), "no results database " + (dir / "none.db").string());
  std::filesystem::remove_all(dir);
}

TEST(SimulationTest, ProcessFunctionsWithoutACostAreRefused) {
  auto s = ParseScenario(R"(name: p
nodes: [{name: e, tier: edge}, {name: c, tier: client}]
tier_links: {client-edge: {delay: 1ms}}
keygroups: [{name: k, replicas: e}]
functions: [{name: f, nodes: e, runtime: process, handler: /bin/cat, keygroup: k}]
workloads: [{name: w, client: c, function: f, node: e, requests: 1}]
)",
                         "p.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto dir = TempDir("enoki-simulate-p");
  auto db = Simulate(*s, {dir.string(), 1, ""});
  EXPECT_FALSE(db.ok());
  EXPECT_EQ(db.status().message(),
            "function f: runtime process cannot run in virtual time; give it a cost (for example "
            "cost: 5ms) and the simulation answers for it with an empty body after that time");
  std::filesystem::remove_all(dir);
}

// A node's forward_timeout bounds its forwarded requests: a remote read over a 1.5 s link (3 s
// round trip) fails with the default 2 s and succeeds with 10 s.
TEST(SimulationTest, ANodesForwardTimeoutBoundsItsRemoteRequests) {
  for (std::string timeout : {"", ", forward_timeout: 10s"}) {
    auto s = ParseScenario(R"(name: f
nodes: [{name: e, tier: edge)" +
                               timeout + R"(}, {name: cl, tier: cloud}, {name: c, tier: client}]
tier_links: {client-edge: {delay: 1ms}, edge-cloud: {delay: 1500ms}}
keygroups: [{name: k, replicas: cl}]
functions: [{name: f, nodes: e, handler: read, keygroup: k, cost: 1ms, timeout: 20s}]
workloads: [{name: w, client: c, function: f, node: e, requests: 1, body: x}]
commit_cost: 10us
)",
                           "f.yaml");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto dir = TempDir("enoki-simulate-forward");
    auto run = Simulate(*s, {dir.string(), 1, ""});
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    auto report = ReadReport(run->database);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_EQ(report->workloads.size(), 1u);
    // Without it: the get waits 2 s and fails. With it: the get (3 s), then the put of the missing
    // item (3 s), plus the client's 2 ms and the function's 1 ms.
    EXPECT_EQ(report->workloads[0].errors, timeout.empty() ? 1 : 0) << timeout;
    if (!timeout.empty()) {
      EXPECT_NEAR(report->workloads[0].ms.p50, 6003, 0.1);
    }
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace enoki::testbed
