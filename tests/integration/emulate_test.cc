// `enoki emulate` end to end: real node processes with shaped links, a workload, and a timeline
// with a partition and a crash. The edge keeps serving from its replica throughout; afterwards
// both replicas hold the same data, and the results database holds every request and event.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "testbed/emulation.h"

namespace enoki::testbed {
namespace {

// The first column of the first row of `sql`, as text.
std::string Query(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  std::string out = "<error>";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(s, 0);
    out = text == nullptr ? "<null>" : reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

TEST(EmulateTest, PartitionAndCrashThenReplicasAgree) {
  auto scenario = LoadScenario(std::string(ENOKI_TEST_SCENARIOS) + "/partition_crash.yaml");
  ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
  auto dir = std::filesystem::temp_directory_path() / ("enoki-emulate-" + std::to_string(getpid()));
  EmulateOptions options;
  options.enoki_binary = ENOKI_BINARY;
  options.results_dir = dir.string();
  auto result = Emulate(*scenario, options, [] { return false; });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_FALSE(result->interrupted);

  // 2 callers x 40/s x 4 s; the edge answered every one, partition and crash notwithstanding.
  ASSERT_EQ(result->workloads.size(), 1u);
  const WorkloadSummary& w = result->workloads[0];
  EXPECT_NEAR(static_cast<double>(w.count), 320, 4);
  EXPECT_EQ(w.errors, 0);
  EXPECT_GE(w.p50_ms, 2.0);  // the client-edge round trip is the floor
  EXPECT_LT(w.p50_ms, 5.0);

  ASSERT_EQ(result->keygroups.size(), 1u);
  const KeygroupCheck& k = result->keygroups[0];
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
  EXPECT_EQ(Query(db, "SELECT mode || ' ' || backend || ' ' || seed FROM run"), "emulate shaper 3");
  EXPECT_EQ(Query(db, "SELECT delay_us FROM links WHERE src = 'edge' AND dst = 'cloud'"),
            "10000.0");
  EXPECT_EQ(Query(db, "SELECT min(converged) FROM replicas"), "1");
  // Requests during the partition (1 s to 2 s) were served.
  EXPECT_NE(Query(db,
                  "SELECT count(*) FROM requests WHERE status = 'OK' AND start_ns BETWEEN "
                  "1100000000 AND 1900000000"),
            "0");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace enoki::testbed
