// Writing a run's results database.
#include "testbed/results.h"

#include <cstdio>
#include <filesystem>

namespace enoki::testbed {
namespace {

constexpr const char* kSchema = R"(
CREATE TABLE run (
  scenario TEXT, file TEXT, scenario_text TEXT, seed INTEGER, mode TEXT, backend TEXT,
  version TEXT, host TEXT, started_at TEXT, time_scale REAL, interrupted INTEGER);
CREATE TABLE links (
  src TEXT, dst TEXT, delay_us REAL, jitter_us REAL, distribution TEXT, loss REAL,
  rate_bps REAL, PRIMARY KEY (src, dst));
CREATE TABLE requests (
  workload TEXT, client TEXT, caller INTEGER, seq INTEGER, function TEXT, node TEXT,
  start_ns INTEGER, end_ns INTEGER, status TEXT, error TEXT, request_bytes INTEGER,
  response_bytes INTEGER);
CREATE TABLE workloads (
  name TEXT PRIMARY KEY, client TEXT, function TEXT, node TEXT, start_ns INTEGER,
  warmup_ns INTEGER);
CREATE TABLE events (at_ns INTEGER, kind TEXT, detail TEXT);
CREATE TABLE replicas (
  keygroup TEXT, converged INTEGER, node TEXT, items INTEGER, digest TEXT, error TEXT);
)";

// A prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Statement() { sqlite3_finalize(s_); }
  Statement& Text(const std::string& v) {
    sqlite3_bind_text(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Int(int64_t v) {
    sqlite3_bind_int64(s_, ++i_, v);
    return *this;
  }
  Statement& Real(double v) {
    sqlite3_bind_double(s_, ++i_, v);
    return *this;
  }
  // Runs it and resets it for the next row.
  bool Step() {
    int rc = sqlite3_step(s_);
    sqlite3_reset(s_);
    i_ = 0;
    return rc == SQLITE_DONE;
  }
  bool ok() const { return s_ != nullptr; }

 private:
  sqlite3_stmt* s_ = nullptr;
  int i_ = 0;
};

}  // namespace

core::Result<std::unique_ptr<ResultsDb>> ResultsDb::Create(const std::string& path) {
  if (std::filesystem::exists(path)) {
    return core::Status::AlreadyExists("results database " + path + " exists already");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db);
    sqlite3_close(db);
    return core::Status::IOError("cannot create results database " + path + ": " + why);
  }
  std::unique_ptr<ResultsDb> out(new ResultsDb(db, path));
  ENOKI_RETURN_IF_ERROR(out->Exec(kSchema));
  return out;
}

ResultsDb::~ResultsDb() { sqlite3_close(db_); }

core::Status ResultsDb::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string why = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    return core::Status::IOError("results database " + path_ + ": " + why);
  }
  return core::Status::Ok();
}

core::Status ResultsDb::Abort(const std::string& table) {
  std::string why = sqlite3_errmsg(db_);
  (void)Exec("ROLLBACK");
  return core::Status::IOError("cannot write " + table + " to " + path_ + ": " + why);
}

core::Status ResultsDb::WriteRun(const RunInfo& run, bool interrupted) {
  ENOKI_RETURN_IF_ERROR(Exec("DELETE FROM run"));
  Statement s(db_, "INSERT INTO run VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  bool ok = s.Text(run.scenario)
                .Text(run.file)
                .Text(run.text)
                .Int(static_cast<int64_t>(run.seed))
                .Text(run.mode)
                .Text(run.backend)
                .Text(run.version)
                .Text(run.host)
                .Text(run.started_at)
                .Real(run.time_scale)
                .Int(interrupted ? 1 : 0)
                .Step();
  return ok ? core::Status::Ok() : core::Status::IOError("cannot write the run to " + path_);
}

core::Status ResultsDb::WriteLinks(
    const std::map<std::pair<std::string, std::string>, net::LinkSpec>& links) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO links VALUES (?,?,?,?,?,?,?)");
  for (const auto& [pair, spec] : links) {
    s.Text(pair.first)
        .Text(pair.second)
        .Real(std::chrono::duration<double, std::micro>(spec.delay).count())
        .Real(std::chrono::duration<double, std::micro>(spec.jitter).count())
        .Text(spec.distribution == net::LinkSpec::Jitter::kNormal ? "normal" : "uniform")
        .Real(spec.loss)
        .Real(spec.rate_bps);
    if (!s.Step()) return Abort("links");
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteRequests(const std::vector<RequestRecord>& requests) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  for (const auto& r : requests) {
    s.Text(r.workload)
        .Text(r.client)
        .Int(r.caller)
        .Int(r.seq)
        .Text(r.function)
        .Text(r.node)
        .Int(r.start_ns)
        .Int(r.end_ns)
        .Text(r.status)
        .Text(r.error)
        .Int(r.request_bytes)
        .Int(r.response_bytes);
    if (!s.Step()) return Abort("requests");
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteEvents(const std::vector<EventRecord>& events) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO events VALUES (?,?,?)");
  for (const auto& e : events) {
    if (!s.Int(e.at_ns).Text(e.kind).Text(e.detail).Step()) return Abort("events");
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteWorkloads(const std::vector<WorkloadRecord>& workloads) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO workloads VALUES (?,?,?,?,?,?)");
  for (const auto& w : workloads) {
    if (!s.Text(w.name)
             .Text(w.client)
             .Text(w.function)
             .Text(w.node)
             .Int(w.start_ns)
             .Int(w.warmup_ns)
             .Step()) {
      return Abort("workloads");
    }
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteReplicas(const KeygroupCheck& check) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO replicas VALUES (?,?,?,?,?,?)");
  for (const auto& r : check.replicas) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r.digest));
    if (!s.Text(check.keygroup)
             .Int(check.converged ? 1 : 0)
             .Text(r.node)
             .Int(r.items)
             .Text(hex)
             .Text(r.error)
             .Step()) {
      return Abort("replicas");
    }
  }
  return Exec("COMMIT");
}

}  // namespace enoki::testbed
