// The results database's trace tables and views: replication lag from a write's commit at its
// origin to its apply at a replica, and the staleness of reads, against hand-made traces.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "adapters/trace_file.h"
#include "testbed/driver.h"
#include "testbed/report.h"
#include "testbed/results.h"
#include "testbed/scenario.h"
#include "testbed/simulation.h"

namespace enoki::testbed {
namespace {

constexpr int64_t kMs = 1000000;

proto::TraceRecord Write(const std::string& key, int64_t wall_us, const std::string& origin,
                         bool is_origin, int64_t durable_ms) {
  proto::TraceRecord r;
  auto* w = r.mutable_write();
  w->set_keygroup("kg");
  w->set_key(key);
  w->mutable_version()->set_wall_us(wall_us);
  w->mutable_version()->set_node(origin);
  w->set_origin(is_origin);
  w->set_durable_ns(durable_ms * kMs);
  return r;
}

proto::TraceRecord Read(const std::string& key, int64_t wall_us, const std::string& origin,
                        int64_t end_ms, proto::Code code = proto::OK) {
  proto::TraceRecord r;
  auto* k = r.mutable_kv_op();
  k->set_function("f");
  k->set_kind("get");
  k->set_keygroup("kg");
  k->set_key(key);
  k->set_start_ns(end_ms * kMs - kMs);
  k->set_end_ns(end_ms * kMs);
  k->set_code(code);
  if (wall_us > 0) {
    k->mutable_version()->set_wall_us(wall_us);
    k->mutable_version()->set_node(origin);
  }
  return r;
}

std::vector<std::string> Column(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  std::vector<std::string> out;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
  while (sqlite3_step(s) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

TEST(ResultsTest, LagAndStalenessFromTheTraces) {
  auto dir = std::filesystem::temp_directory_path() / ("enoki-results-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // Node a writes key k at versions 1, 2, 3 and 4 (durable at 10, 20, 30 and 45 ms); node b
  // writes version 3.5 (a greater version than 3, smaller than 4) durable only at 48 ms, and
  // applies a's version 1 at 12 ms. Node c reads.
  {
    auto a = adapters::TraceFile::Open((dir / "a.trace").string());
    ASSERT_TRUE(a.ok());
    for (auto [v, t] : {std::pair{1, 10}, {2, 20}, {3, 30}, {40, 45}}) {
      (*a)->Record(Write("k", v, "a", true, t));
    }
    auto b = adapters::TraceFile::Open((dir / "b.trace").string());
    ASSERT_TRUE(b.ok());
    (*b)->Record(Write("k", 1, "a", false, 12));
    (*b)->Record(Write("k", 35, "b", true, 48));
    auto c = adapters::TraceFile::Open((dir / "c.trace").string());
    ASSERT_TRUE(c.ok());
    (*c)->Record(Read("k", 1, "a", 15));  // version 2 was not durable yet: fresh
    (*c)->Record(Read("k", 1, "a", 25));  // version 2 was, since 20 ms: 5 ms stale
    (*c)->Record(Read("k", 3, "a", 35));  // version 40 at 45 ms, 35 at 48 ms: fresh
    (*c)->Record(Read("k", 3, "a", 50));  // the earliest newer commit is 40's, at 45 ms: 5 ms
    (*c)->Record(Read("k", 0, "", 60, proto::NOT_FOUND));  // no version: left out
  }
  auto db = ResultsDb::Create((dir / "run.db").string());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (const char* n : {"a", "b", "c"}) {
    std::string path = (dir / (std::string(n) + ".trace")).string();
    ASSERT_TRUE(
        (*db)
            ->WriteTrace(
                n, [&](const auto& each) { return adapters::ReadTraceFile(path, each); }, 5 * kMs)
            .ok());
  }
  std::string path = (*db)->path();
  db->reset();
  // Times are from the run's start, 5 ms into the clock.
  EXPECT_EQ(Column(path,
                   "SELECT origin || ' ' || replica || ' ' || committed_ns || ' ' || lag_ns "
                   "FROM replica_applies"),
            (std::vector<std::string>{"a b 5000000 2000000"}));
  EXPECT_EQ(Column(path, "SELECT staleness_ns FROM read_staleness ORDER BY end_ns"),
            (std::vector<std::string>{"0", "5000000", "0", "5000000"}));
  EXPECT_EQ(Column(path, "SELECT count(*) FROM kv_ops"), (std::vector<std::string>{"5"}));
  std::filesystem::remove_all(dir);
}

// The scenario of the lateness tests: one edge, one client, one workload of 3 requests.
core::Result<Scenario> LateScenario() {
  return ParseScenario(
      "name: late\nnodes: [{name: e, tier: edge}, {name: c, tier: client}]\n"
      "tier_links: {client-edge: {delay: 1ms}}\n"
      "keygroups: [{name: k, replicas: [e]}]\n"
      "functions: [{name: f, nodes: e, handler: echo, keygroup: k}]\n"
      "workloads: [{name: w, client: c, function: f, node: e, requests: 3}]\n",
      "late.yaml");
}

// Request `seq` of LateScenario()'s workload, started at `start_ns`, 2 ms long.
RequestRecord LateRequest(int64_t seq, int64_t start_ns, std::string status) {
  RequestRecord r;
  r.workload = "w";
  r.client = "c";
  r.function = "f";
  r.node = "e";
  r.seq = seq;
  r.start_ns = start_ns;
  r.end_ns = start_ns + 2 * kMs;
  r.status = std::move(status);
  return r;
}

// Writes an emulated run of LateScenario() that made `requests` to a new database at `path`, and
// reads its report.
core::Result<Report> ReportOfLateRun(const std::string& path,
                                     const std::vector<RequestRecord>& requests) {
  auto s = LateScenario();
  if (!s.ok()) return s.status();
  auto db = ResultsDb::Create(path);
  if (!db.ok()) return db.status();
  RunInfo info;
  info.scenario = "late";
  info.mode = "emulate";
  info.backend = "shaper";
  ENOKI_RETURN_IF_ERROR(WriteResults(**db, *s, info, false, {}, requests, {}, {}));
  db->reset();
  return ReadReport(path);
}

// The report counts a workload's requests from the end of its warm-up on (their errors, causes,
// latencies and sends' lateness alike) and a request of no workload not at all; a database from
// before requests had due_ns gives the same report but for the lateness.
TEST(ResultsTest, TheReportCountsTheRequestsOfItsWorkloadsAfterTheirWarmUp) {
  auto dir = std::filesystem::temp_directory_path() / ("enoki-warm-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto s = LateScenario();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  s->warmup = std::chrono::milliseconds(250);
  std::string path = (dir / "warm.db").string();
  {
    auto db = ResultsDb::Create(path);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    RunInfo info;
    info.scenario = "late";
    info.mode = "emulate";
    info.backend = "shaper";
    // Requests every 100 ms; those at 0, 100 and 200 ms (in the warm-up) failed and were sent
    // 20 ms late, which would make the run overloaded if they counted; the one at 400 ms timed
    // out.
    std::vector<RequestRecord> requests;
    for (int64_t i = 0; i < 6; ++i) {
      RequestRecord r = LateRequest(i, i * 100 * kMs, i < 3 ? "UNAVAILABLE" : "OK");
      r.due_ns = r.start_ns - (i < 3 ? 20 : 1) * kMs;
      r.request_bytes = 1000;
      r.response_bytes = 500;
      if (i == 4) {
        r.status = "DEADLINE_EXCEEDED";
        r.error = "no answer";
      }
      requests.push_back(r);
    }
    ASSERT_TRUE(WriteResults(**db, *s, info, false, {}, requests, {}, {}).ok());
  }
  sqlite3* opened = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &opened), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> raw(opened, sqlite3_close);
  ASSERT_EQ(sqlite3_exec(raw.get(),
                         "INSERT INTO requests (workload, status, start_ns, end_ns, due_ns) "
                         "VALUES ('gone', 'OK', 900000000, 990000000, 0)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto check = [&](bool with_due) {
    auto report = ReadReport(path);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_EQ(report->workloads.size(), 1u);
    const WorkloadSummary& w = report->workloads[0];
    EXPECT_EQ(w.count, 3);
    EXPECT_EQ(w.errors, 1);
    EXPECT_EQ(w.causes,
              (std::vector<std::pair<std::string, int64_t>>{{"DEADLINE_EXCEEDED: no answer", 1}}));
    EXPECT_EQ(w.ms.count, 2);
    EXPECT_DOUBLE_EQ(w.ms.max, 2.0);
    // The OK ones started at 300 and 500 ms and ended 2 ms later: 0.202 s, 3,000 bytes.
    EXPECT_NEAR(w.ok_per_s, 2 / 0.202, 1e-9);
    EXPECT_NEAR(w.ok_mb_per_s, 3000 / 1e6 / 0.202, 1e-12);
    EXPECT_EQ(report->late_ms.count, with_due ? 3 : 0);
    EXPECT_DOUBLE_EQ(report->late_ms.max, with_due ? 1.0 : 0.0);
    EXPECT_FALSE(report->Overloaded());
  };
  check(true);
  ASSERT_EQ(
      sqlite3_exec(raw.get(), "ALTER TABLE requests DROP COLUMN due_ns", nullptr, nullptr, nullptr),
      SQLITE_OK);
  raw.reset();
  check(false);
  std::filesystem::remove_all(dir);
}

// A run whose callers sent more than 5 ms later than their schedule is flagged as overloaded
// (requests.due_ns against start_ns); 1 ms late is only reported.
TEST(ResultsTest, AnOverloadedRunIsFlaggedByHowLateItsCallersSent) {
  auto dir = std::filesystem::temp_directory_path() / ("enoki-late-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (int64_t late_ms : {1, 7}) {
    std::vector<RequestRecord> requests;
    for (int64_t i = 0; i < 3; ++i) {
      RequestRecord r = LateRequest(i, i * 100 * kMs + (i == 2 ? late_ms * kMs : 0), "OK");
      r.due_ns = i * 100 * kMs;
      requests.push_back(r);
    }
    auto report =
        ReportOfLateRun((dir / ("late" + std::to_string(late_ms) + ".db")).string(), requests);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->late_ms.count, 3);
    EXPECT_DOUBLE_EQ(report->late_ms.max, static_cast<double>(late_ms));
    EXPECT_EQ(report->Overloaded(), late_ms > 5);
    std::string text = FormatReport(*report);
    EXPECT_NE(text.find("callers' sends against their schedule: late by p50 0.000"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("OVERLOADED: the callers' sends 7.000 ms late at p99 (1 more than 5 ms)") !=
                  std::string::npos,
              late_ms > 5)
        << text;
  }
  std::filesystem::remove_all(dir);
}

// A workload whose calls failed is followed by why: one line per cause (status and message) with
// its count, the most frequent first; one most of whose calls failed is flagged.
TEST(ResultsTest, TheReportCountsWhyCallsFailed) {
  auto dir = std::filesystem::temp_directory_path() / ("enoki-causes-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<RequestRecord> requests;
  for (int64_t i = 0; i < 10; ++i) {
    RequestRecord r = LateRequest(i, i * 100 * kMs, i < 2 ? "OK" : i < 7 ? "NOT_FOUND" : "TIMEOUT");
    if (r.status == "NOT_FOUND") r.error = "keygroup 'shpo' does not exist";
    requests.push_back(r);
  }
  auto report = ReportOfLateRun((dir / "causes.db").string(), requests);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::string text = FormatReport(*report);
  EXPECT_NE(text.find("workload w: 8 of 10 calls failed (MOST CALLS FAILED):\n"
                      "         5 x NOT_FOUND: keygroup 'shpo' does not exist\n"
                      "         3 x TIMEOUT\n"),
            std::string::npos)
      << text;
  std::filesystem::remove_all(dir);
}

// A run whose node ran its timers, or handed on shaped messages, more than 5 ms late at the p99 is
// flagged as overloaded, as one whose callers sent that late is; the report states every
// process's lateness and CPU; a stall of 9 ms at the max alone is only reported.
TEST(ResultsTest, AnOverloadedRunIsFlaggedByHowLateItsProcessesWere) {
  auto s = LateScenario();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto dir = std::filesystem::temp_directory_path() / ("enoki-loads-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // 1 ms at the max only (a stall) is not overloaded; 6 ms at the p99 is.
  auto lateness = [](proto::Lateness& l, bool late) {
    l.set_count(100);
    l.set_p50_ns(20000);
    l.set_p99_ns(late ? 6 * kMs : 400000);
    l.set_max_ns(late ? 7 * kMs : 9 * kMs);
  };
  // Which of the node's figures is late: none, its timers, its deliveries.
  for (const std::string late : {"none", "timers", "deliveries"}) {
    auto db = ResultsDb::Create((dir / (late + ".db")).string());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    RunInfo info;
    info.scenario = "late";
    info.mode = "emulate";
    info.backend = "shaper";
    ASSERT_TRUE(WriteResults(**db, *s, info, false, {}, {}, {}, {}).ok());
    ProcessRecord driver{"driver", "driver", {}}, node{"e", "node", {}};
    lateness(*driver.stats.mutable_timers(), false);
    lateness(*driver.stats.mutable_deliveries(), false);
    lateness(*node.stats.mutable_timers(), late == "timers");
    lateness(*node.stats.mutable_deliveries(), late == "deliveries");
    for (ProcessRecord* p : {&driver, &node}) {
      p->stats.set_window_ns(2000 * kMs);
      p->stats.set_cpu_ns(1500 * kMs);
      p->stats.set_host_busy(0.25);
      p->stats.set_host_cores(2);
      p->stats.set_host("h");
    }
    ASSERT_TRUE((*db)->WriteProcesses({driver, node}).ok());
    std::string path = (*db)->path();
    db->reset();
    auto report = ReadReport(path);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_EQ(report->processes.size(), 2u);
    EXPECT_EQ(report->processes[1].process, "e");
    EXPECT_EQ(report->processes[1].stats.timers().p99_ns(), late == "timers" ? 6 * kMs : 400000);
    EXPECT_EQ(report->processes[1].stats.timers().max_ns(), late == "timers" ? 7 * kMs : 9 * kMs);
    EXPECT_EQ(report->processes[1].stats.cpu_ns(), 1500 * kMs);
    EXPECT_EQ(report->Overloaded(), late != "none") << late;
    std::string text = FormatReport(*report);
    EXPECT_NE(text.find("\n  driver                   0.020     0.400     9.000       0.020     "
                        "0.400     9.000     1.50   25% of 2\n"),
              std::string::npos)
        << text;
    std::string flag = "OVERLOADED: node e's " + late + " 6.000 ms late at p99 (max 7.000)";
    EXPECT_EQ(text.find(flag) != std::string::npos, late != "none") << text;
    EXPECT_EQ(report->OverloadCauses(), late == "none" ? "" : flag.substr(12)) << late;
  }
  std::filesystem::remove_all(dir);
}

// A simulation records no process lateness (virtual time is never late), and its report says
// nothing of it.
TEST(ResultsTest, ASimulationHasNoProcessLateness) {
  auto s = ParseScenario(
      "name: sim\nnodes: [{name: e, tier: edge}, {name: c, tier: client}]\n"
      "tier_links: {client-edge: {delay: 1ms}}\n"
      "keygroups: [{name: k, replicas: [e]}]\n"
      "functions: [{name: f, nodes: e, handler: echo, keygroup: k, cost: 50us}]\n"
      "commit_cost: 20us\n"
      "workloads: [{name: w, client: c, function: f, node: e, requests: 3}]\n",
      "sim.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto dir =
      std::filesystem::temp_directory_path() / ("enoki-simloads-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto result = Simulate(*s, {dir.string(), 1, ""});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto report = ReadReport(result->database);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->workloads.at(0).count, 3);
  EXPECT_TRUE(report->processes.empty());
  EXPECT_FALSE(report->Overloaded());
  EXPECT_EQ(FormatReport(*report).find("how late each process"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace enoki::testbed
