// The staleness at the client (testbed/staleness.h), as the paper's artifact defines it, on
// requests whose answers are known: fresh, stale, the empty value before the first write, a value
// written twice, a value no write wrote; and the same from a simulated run of the paper's
// replication placement, through the results database and the report.
#include "testbed/staleness.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>

#include "core/hash.h"
#include "testbed/plots.h"
#include "testbed/report.h"
#include "testbed/simulation.h"

namespace enoki::testbed {
namespace {

int64_t Digest(const std::string& value) { return static_cast<int64_t>(core::Fnv1a(value)); }

RequestRecord Request(const std::string& workload, int64_t seq, int64_t start, int64_t end,
                      const std::string& value, const std::string& status = "OK") {
  RequestRecord r;
  r.workload = workload;
  r.seq = seq;
  r.start_ns = start;
  r.end_ns = end;
  r.status = status;
  r.response_digest = status == "OK" ? Digest(value) : 0;
  return r;
}

TEST(StalenessTest, AReadIsStaleByHowLongAgoTheWriteThatOverwroteItsValueEnded) {
  Scenario s;
  s.workloads.resize(3);
  s.workloads[0].name = "w";
  s.workloads[1].name = "r";
  s.workloads[1].stale_against = "w";
  s.workloads[2].name = "other";  // judged against nothing: no rows
  std::vector<RequestRecord> requests = {
      // The writes, not in the order they started; a failed one writes nothing.
      Request("w", 1, 100, 110, "v1"),
      Request("w", 0, 0, 10, "v0"),
      Request("w", 2, 200, 210, "v2"),
      Request("w", 3, 300, 310, "v1"),  // v1 again
      Request("w", 4, 400, 410, "v4"),
      Request("w", 5, 250, 600, "", "TIMEOUT"),
      Request("other", 0, 0, 1000, "v0"),
      // The reads.
      Request("r", 0, 0, 5, ""),        // before the first write ended: fresh
      Request("r", 1, 0, 20, ""),       // the first write ended at 10: 10 stale
      Request("r", 2, 40, 50, "v0"),    // v0 overwritten by v1 ending at 110: fresh
      Request("r", 3, 140, 150, "v0"),  // 40 stale
      Request("r", 4, 140, 150, "v1"),  // fresh
      Request("r", 5, 290, 305, "v1"),  // the second v1 (started at 300): fresh until 410
      Request("r", 6, 480, 500, "v1"),  // overwritten by v4 ending at 410: 90 stale
      Request("r", 7, 480, 500, "v4"),  // the last write: fresh
      Request("r", 8, 480, 500, "zz"),  // no write wrote it
      Request("r", 9, 480, 500, "v0", "TIMEOUT"),  // not an answer: no row
      // v2 was overwritten by the second v1 (ended at 310), not by the failed write (250-600).
      Request("r", 10, 480, 500, "v2"),
  };
  auto rows = ClientStaleness(s, requests);
  std::map<int64_t, int64_t> by_seq;
  for (const auto& row : rows) {
    EXPECT_EQ(row.workload, "r");
    by_seq[row.seq] = row.staleness_ns;
  }
  EXPECT_EQ(
      by_seq,
      (std::map<int64_t, int64_t>{
          {0, 0}, {1, 10}, {2, 0}, {3, 40}, {4, 0}, {5, 0}, {6, 90}, {7, 0}, {8, -1}, {10, 190}}));
}

// The paper's replication placement (one writer at edge1, one reader at edge2, the keygroup
// replicated at both, 10 ms between them), simulated: every OK read has its row; a read that ends
// within the replication's ~10 ms after a write ended returns the overwritten value, and no read
// is staler than that (the writes are 100 ms apart).
TEST(StalenessTest, TheReplicationPlacementSimulatedHasItsStalenessAtTheClient) {
  auto s = ParseScenario(R"(name: stale
seed: 3
nodes:
  - {name: edge1, tier: edge}
  - {name: edge2, tier: edge}
  - {name: client, tier: client}
tier_links:
  client-edge: {delay: 1ms}
  edge-edge: {delay: 10ms}
keygroups:
  - {name: k, replicas: [edge1, edge2]}
functions:
  - {name: rep, nodes: [edge1, edge2], handler: replication, keygroup: k, cost: 100us}
commit_cost: 20us
workloads:
  - {name: write, client: client, function: rep, node: edge1, rate: 10/s, requests: 200,
     body: "v{seq}"}
  - {name: read, client: client, function: rep, node: edge2, rate: 10/s, requests: 200,
     arrivals: poisson, stale_against: write}
)",
                         "stale.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto dir = std::filesystem::temp_directory_path() / ("enoki-stale-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto run = Simulate(*s, {dir.string(), 1, ""});
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  auto report = ReadReport(run->database);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->client_staleness.size(), 1u);
  const ClientStalenessSummary& c = report->client_staleness[0];
  EXPECT_EQ(c.reads, "read");
  EXPECT_EQ(c.writes, "write");
  EXPECT_EQ(c.count, 200);
  EXPECT_EQ(c.unmatched, 0);
  // Poisson reads meet the ~10 ms after each write's end about a tenth of the time.
  EXPECT_GT(c.stale, 5);
  EXPECT_LT(c.stale, 50);
  EXPECT_GT(c.ms.max, 0.0);
  EXPECT_LT(c.ms.max, 12.0);
  EXPECT_NE(FormatReport(*report).find("staleness at the client (the paper's) of read against "
                                       "write: 200 reads, " +
                                       std::to_string(c.stale) + " stale"),
            std::string::npos)
      << FormatReport(*report);
  // Compared with itself: the same share, staleness and lag, ratios of 1.
  std::string compared = FormatComparison(*report, *report);
  EXPECT_NE(compared.find("staleness at client"), std::string::npos) << compared;
  EXPECT_NE(compared.find("replication lag"), std::string::npos) << compared;
  // B - A: 0 percentage points, then the two p50s (0 ms: most reads are fresh) 0 ms apart.
  EXPECT_NE(compared.find("    0.0      0.000      0.000   0.000"), std::string::npos) << compared;
  // Its CDF among the run's figures.
  auto drawn = WritePlots(run->database, (dir / "plots").string());
  ASSERT_TRUE(drawn.ok()) << drawn.status().ToString();
  EXPECT_NE(std::find(drawn->begin(), drawn->end(), "staleness_cdf"), drawn->end());
  EXPECT_TRUE(std::filesystem::exists(dir / "plots" / "staleness_cdf.png"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace enoki::testbed
