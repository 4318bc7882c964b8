// `enoki simulate`: the partition-and-crash scenario of the emulation test in virtual time, its
// replicas converged, and two runs of one seed giving the same database byte for byte.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

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

TEST(SimulationTest, PartitionAndCrashConvergeAndRunsRepeatByteForByte) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/partition_crash.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir =
      std::filesystem::temp_directory_path() / ("enoki-simulate-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string first, second;
  for (auto* out : {&first, &second}) {
    auto sub = dir / (out == &first ? "a" : "b");
    auto run = Simulate(*scenario, {sub.string()});
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
  EXPECT_EQ(w.errors, 0);    // the edge serves throughout the partition and the crash
  EXPECT_GE(w.ms.p50, 2.0);  // the client-edge round trip, exactly, in virtual time
  EXPECT_LT(w.ms.p50, 2.1);
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

TEST(SimulationTest, ProcessFunctionsAreRefused) {
  auto s = ParseScenario(R"(name: p
nodes: [{name: e, tier: edge}, {name: c, tier: client}]
tier_links: {client-edge: {delay: 1ms}}
keygroups: [{name: k, replicas: e}]
functions: [{name: f, nodes: e, runtime: process, handler: /bin/cat, keygroup: k}]
workloads: [{name: w, client: c, function: f, node: e, requests: 1}]
)",
                         "p.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto dir =
      std::filesystem::temp_directory_path() / ("enoki-simulate-p-" + std::to_string(getpid()));
  auto db = Simulate(*s, {dir.string()});
  EXPECT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("runtime process cannot run in virtual time"),
            std::string::npos)
      << db.status().message();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace enoki::testbed
