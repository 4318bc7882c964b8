// Writing a run's results database.
#include "testbed/results.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

namespace enoki::testbed {
namespace {

constexpr const char* kSchema = R"(
CREATE TABLE run (
  scenario TEXT, file TEXT, scenario_text TEXT, seed INTEGER, mode TEXT, backend TEXT,
  version TEXT, host TEXT, started_at TEXT, time_scale REAL, interrupted INTEGER);
CREATE TABLE links (
  src TEXT, dst TEXT, delay_us REAL, jitter_us REAL, distribution TEXT, loss REAL,
  rate_bps REAL, drop_fraction REAL, PRIMARY KEY (src, dst));
CREATE TABLE requests (
  workload TEXT, client TEXT, caller INTEGER, seq INTEGER, function TEXT, node TEXT,
  start_ns INTEGER, end_ns INTEGER, status TEXT, error TEXT, request_bytes INTEGER,
  response_bytes INTEGER, response_digest INTEGER, due_ns INTEGER);
CREATE TABLE workloads (
  name TEXT PRIMARY KEY, client TEXT, function TEXT, node TEXT, start_ns INTEGER,
  warmup_ns INTEGER, stale_against TEXT);
CREATE TABLE client_staleness (
  workload TEXT, caller INTEGER, seq INTEGER, start_ns INTEGER, end_ns INTEGER,
  staleness_ns INTEGER);
CREATE TABLE network (
  src TEXT, dst TEXT, rtt_min_us REAL, rtt_median_us REAL, probes INTEGER,
  added_delay_us REAL, PRIMARY KEY (src, dst));
CREATE TABLE events (at_ns INTEGER, kind TEXT, detail TEXT);
CREATE TABLE costs (
  what TEXT, mean_ns INTEGER, jitter_ns INTEGER, distribution TEXT, percentiles_ns TEXT,
  source TEXT);
CREATE TABLE replicas (
  keygroup TEXT, converged INTEGER, node TEXT, items INTEGER, digest TEXT, error TEXT);
CREATE TABLE writes (
  node TEXT, keygroup TEXT, key TEXT, version_us INTEGER, version_logical INTEGER,
  version_node TEXT, origin INTEGER, deleted INTEGER, durable_ns INTEGER);
CREATE INDEX writes_by_version ON writes
  (keygroup, key, origin, version_us, version_logical, version_node);
CREATE TABLE kv_ops (
  node TEXT, function TEXT, invocation INTEGER, kind TEXT, keygroup TEXT, key TEXT,
  local INTEGER, start_ns INTEGER, end_ns INTEGER, status TEXT, version_us INTEGER,
  version_logical INTEGER, version_node TEXT);
CREATE TABLE clocks (
  node TEXT, taken TEXT, at_ns INTEGER, offset_ns INTEGER, error_ns INTEGER, rtt_ns INTEGER,
  exchanges INTEGER, kept INTEGER, role TEXT);
CREATE VIEW replica_applies AS
  SELECT a.keygroup, a.key, a.version_us, a.version_logical, a.version_node,
         o.node AS origin, o.durable_ns AS committed_ns, a.node AS replica,
         a.durable_ns AS applied_ns, a.durable_ns - o.durable_ns AS lag_ns
  FROM writes a JOIN writes o
    ON o.origin = 1 AND a.origin = 0 AND o.keygroup = a.keygroup AND o.key = a.key
   AND o.version_us = a.version_us AND o.version_logical = a.version_logical
   AND o.version_node = a.version_node;
CREATE VIEW read_staleness AS
  SELECT r.node, r.function, r.invocation, r.keygroup, r.key, r.end_ns,
         coalesce(r.end_ns - (
           SELECT min(w.durable_ns) FROM writes w
           WHERE w.origin = 1 AND w.keygroup = r.keygroup AND w.key = r.key
             AND (w.version_us, w.version_logical, w.version_node) >
                 (r.version_us, r.version_logical, r.version_node)
             AND w.durable_ns <= r.end_ns), 0) AS staleness_ns
  FROM kv_ops r WHERE r.kind = 'get' AND r.status = 'OK';
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
  Statement s(db_, "INSERT INTO links VALUES (?,?,?,?,?,?,?,?)");
  for (const auto& [pair, spec] : links) {
    s.Text(pair.first)
        .Text(pair.second)
        .Real(std::chrono::duration<double, std::micro>(spec.delay).count())
        .Real(std::chrono::duration<double, std::micro>(spec.jitter).count())
        .Text(spec.distribution == net::LinkSpec::Jitter::kNormal ? "normal" : "uniform")
        .Real(spec.loss)
        .Real(spec.rate_bps)
        .Real(spec.drop);
    if (!s.Step()) return Abort("links");
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteNetwork(const std::vector<NetworkRecord>& network) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO network VALUES (?,?,?,?,?,?)");
  for (const auto& n : network) {
    s.Text(n.src)
        .Text(n.dst)
        .Real(n.rtt_min_ms * 1000)
        .Real(n.rtt_median_ms * 1000)
        .Int(n.probes)
        .Real(n.added_delay_ms * 1000);
    if (!s.Step()) return Abort("network");
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteRequests(const std::vector<RequestRecord>& requests) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
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
        .Int(r.response_bytes)
        .Int(r.response_digest)
        .Int(r.due_ns);
    if (!s.Step()) return Abort("requests");
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteClientStaleness(const std::vector<ClientStalenessRecord>& reads) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO client_staleness VALUES (?,?,?,?,?,?)");
  for (const auto& r : reads) {
    if (!s.Text(r.workload)
             .Int(r.caller)
             .Int(r.seq)
             .Int(r.start_ns)
             .Int(r.end_ns)
             .Int(r.staleness_ns)
             .Step()) {
      return Abort("client_staleness");
    }
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
  Statement s(db_, "INSERT INTO workloads VALUES (?,?,?,?,?,?,?)");
  for (const auto& w : workloads) {
    if (!s.Text(w.name)
             .Text(w.client)
             .Text(w.function)
             .Text(w.node)
             .Int(w.start_ns)
             .Int(w.warmup_ns)
             .Text(w.stale_against)
             .Step()) {
      return Abort("workloads");
    }
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteCosts(const std::vector<CostRecord>& costs) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO costs VALUES (?,?,?,?,?,?)");
  for (const auto& c : costs) {
    const sim::CostModel& m = c.model;
    std::string percentiles;
    for (auto d : m.percentiles) {
      percentiles += (percentiles.empty() ? "" : ",") + std::to_string(d.count());
    }
    std::string distribution = !m.percentiles.empty()                             ? "measured"
                               : m.distribution == net::LinkSpec::Jitter::kNormal ? "normal"
                                                                                  : "uniform";
    if (!s.Text(c.what)
             .Int(m.mean.count())
             .Int(m.jitter.count())
             .Text(distribution)
             .Text(percentiles)
             .Text(c.source)
             .Step()) {
      return Abort("costs");
    }
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteReplicas(const std::vector<KeygroupCheck>& checks) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO replicas VALUES (?,?,?,?,?,?)");
  for (const auto& check : checks) {
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
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteTrace(const std::string& node, const TraceSource& source,
                                   int64_t t0_ns) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement writes(db_, "INSERT INTO writes VALUES (?,?,?,?,?,?,?,?,?)");
  Statement ops(db_, "INSERT INTO kv_ops VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  bool ok = true;
  core::Status read = source([&](const proto::TraceRecord& r) {
    if (!ok) return;
    if (r.has_write()) {
      const proto::WriteTrace& w = r.write();
      ok = writes.Text(node)
               .Text(w.keygroup())
               .Text(w.key())
               .Int(w.version().wall_us())
               .Int(w.version().logical())
               .Text(w.version().node())
               .Int(w.origin() ? 1 : 0)
               .Int(w.deleted() ? 1 : 0)
               .Int(w.durable_ns() - t0_ns)
               .Step();
    } else if (r.has_kv_op()) {
      const proto::KvOpTrace& k = r.kv_op();
      ok = ops.Text(node)
               .Text(k.function())
               .Int(static_cast<int64_t>(k.invocation()))
               .Text(k.kind())
               .Text(k.keygroup())
               .Text(k.key())
               .Int(k.local() ? 1 : 0)
               .Int(k.start_ns() - t0_ns)
               .Int(k.end_ns() - t0_ns)
               .Text(proto::Code_Name(k.code()))
               .Int(k.version().wall_us())
               .Int(k.version().logical())
               .Text(k.version().node())
               .Step();
    }
  });
  if (!ok) return Abort("the trace of " + node);
  if (!read.ok()) {
    (void)Exec("ROLLBACK");
    return read;
  }
  return Exec("COMMIT");
}

core::Status ResultsDb::WriteClocks(const std::vector<ClockRecord>& clocks, int64_t t0_ns) {
  ENOKI_RETURN_IF_ERROR(Exec("BEGIN"));
  Statement s(db_, "INSERT INTO clocks VALUES (?,?,?,?,?,?,?,?,?)");
  for (const auto& c : clocks) {
    const ClockEstimate& e = c.estimate;
    if (!s.Text(c.node)
             .Text(c.taken)
             .Int(e.at_ns - t0_ns)
             .Int(e.offset_ns)
             .Int(e.error_ns)
             .Int(e.rtt_ns)
             .Int(e.exchanges)
             .Int(e.kept)
             .Text(c.role)
             .Step()) {
      return Abort("clocks");
    }
  }
  return Exec("COMMIT");
}

std::string UtcNow(const char* format) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string HostDescription() {
  char name[256] = {0};
  ::gethostname(name, sizeof name - 1);
  return std::string(name) + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores";
}

}  // namespace enoki::testbed
