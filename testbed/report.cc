// Reading and summarizing a results database.
#include "testbed/report.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>

namespace enoki::testbed {
namespace {

// A read-only connection and its statements, closed when it goes out of scope.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      error_ = sqlite3_errmsg(db_);
    }
  }
  ~Reader() { sqlite3_close(db_); }
  // Whether `table` has column `column` (an older database lacks what later versions added).
  core::Result<bool> HasColumn(const std::string& table, const std::string& column) {
    bool has = false;
    std::string sql =
        "SELECT 1 FROM pragma_table_info('" + table + "') WHERE name = '" + column + "'";
    ENOKI_RETURN_IF_ERROR(Each(sql.c_str(), [&](sqlite3_stmt*) { has = true; }));
    return has;
  }
  // Runs `sql`; `row` gets each row's statement.
  core::Status Each(const char* sql, const std::function<void(sqlite3_stmt*)>& row) {
    if (!error_.empty()) return core::Status::IOError("cannot open " + path_ + ": " + error_);
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) {
      std::string why = sqlite3_errmsg(db_);
      return core::Status::InvalidArgument(path_ + " is not an enoki results database (" + why +
                                           ")");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) row(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
      return core::Status::IOError("reading " + path_ + ": " + sqlite3_errmsg(db_));
    return core::Status::Ok();
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::string error_;
};

// A column's text without a copy, valid until the row changes.
std::string_view TextView(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t == nullptr ? std::string_view()
                      : std::string_view(reinterpret_cast<const char*>(t),
                                         static_cast<size_t>(sqlite3_column_bytes(s, col)));
}

std::string Text(sqlite3_stmt* s, int col) { return std::string(TextView(s, col)); }

// Hashes a std::string and a std::string_view alike, so that a map keyed by strings is searched
// by a view.
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

}  // namespace

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto i = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(std::max<size_t>(i, 1), sorted.size()) - 1];
}

Spread Spread::Of(std::vector<double>& ms) {
  std::sort(ms.begin(), ms.end());
  Spread s;
  s.count = static_cast<int64_t>(ms.size());
  s.p50 = Percentile(ms, 0.5);
  s.p95 = Percentile(ms, 0.95);
  s.p99 = Percentile(ms, 0.99);
  s.max = ms.empty() ? 0 : ms.back();
  return s;
}

core::Result<Report> ReadReport(const std::string& database) {
  Report report;
  report.database = database;
  std::FILE* probe = std::fopen(database.c_str(), "rb");
  if (probe == nullptr) return core::Status::NotFound("no results database " + database);
  std::fclose(probe);
  Reader db(database);
  int runs = 0;
  ENOKI_RETURN_IF_ERROR(
      db.Each("SELECT scenario, file, seed, mode, backend, version, host, started_at, time_scale, "
              "interrupted FROM run",
              [&](sqlite3_stmt* s) {
                ++runs;
                report.run.scenario = Text(s, 0);
                report.run.file = Text(s, 1);
                report.run.seed = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
                report.run.mode = Text(s, 3);
                report.run.backend = Text(s, 4);
                report.run.version = Text(s, 5);
                report.run.host = Text(s, 6);
                report.run.started_at = Text(s, 7);
                report.run.time_scale = sqlite3_column_double(s, 8);
                report.interrupted = sqlite3_column_int(s, 9) != 0;
              }));
  if (runs != 1) return core::Status::InvalidArgument(database + " holds no finished run");
  // Older databases have no costs table (or one without percentiles).
  auto has_costs = db.HasColumn("costs", "percentiles_ns");
  if (!has_costs.ok()) return has_costs.status();
  if (*has_costs) {
    ENOKI_RETURN_IF_ERROR(
        db.Each("SELECT what, mean_ns, jitter_ns, distribution, percentiles_ns, source FROM costs "
                "ORDER BY rowid",
                [&](sqlite3_stmt* s) {
                  sim::CostModel m;
                  m.mean = core::Duration(sqlite3_column_int64(s, 1));
                  m.jitter = core::Duration(sqlite3_column_int64(s, 2));
                  if (Text(s, 3) == "normal") m.distribution = net::LinkSpec::Jitter::kNormal;
                  std::stringstream list(Text(s, 4));
                  for (std::string ns; std::getline(list, ns, ',');) {
                    m.percentiles.push_back(core::Duration(std::stoll(ns)));
                  }
                  report.costs.push_back({Text(s, 0), std::move(m), Text(s, 5)});
                }));
  }
  auto has_clocks = db.HasColumn("clocks", "error_ns");  // older databases have no clocks
  if (!has_clocks.ok()) return has_clocks.status();
  if (*has_clocks) {
    auto has_roles = db.HasColumn("clocks", "role");  // older databases have nodes' clocks only
    if (!has_roles.ok()) return has_roles.status();
    std::string sql =
        std::string("SELECT node, taken, at_ns, offset_ns, error_ns, rtt_ns, exchanges, kept, ") +
        (*has_roles ? "role" : "'node'") + " FROM clocks ORDER BY node, at_ns";
    ENOKI_RETURN_IF_ERROR(db.Each(sql.c_str(), [&](sqlite3_stmt* s) {
      report.clocks.push_back({Text(s, 0), Text(s, 1),
                               ClockEstimate{sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                                             sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5),
                                             sqlite3_column_int(s, 6), sqlite3_column_int(s, 7)},
                               Text(s, 8)});
    }));
  }
  // Per workload, in the order of the workloads table: the OK ones' latencies, the first start
  // and last end of the OK ones, and their bytes both ways.
  struct Counted {
    size_t i;      // in report.workloads
    int64_t from;  // requests that started before (the warm-up) are not counted
  };
  std::unordered_map<std::string, Counted, TextHash, std::equal_to<>> index;
  struct Ok {
    std::vector<double> ms;
    int64_t first = std::numeric_limits<int64_t>::max(), last = 0, bytes = 0;
  };
  std::vector<Ok> ok;
  std::vector<std::map<std::string, int64_t>> causes;  // per workload: failures by cause
  ENOKI_RETURN_IF_ERROR(db.Each("SELECT name, start_ns + warmup_ns FROM workloads ORDER BY rowid",
                                [&](sqlite3_stmt* s) {
                                  // As SQL compares: a NULL start or warm-up counts nothing.
                                  int64_t from = sqlite3_column_type(s, 1) == SQLITE_NULL
                                                     ? std::numeric_limits<int64_t>::max()
                                                     : sqlite3_column_int64(s, 1);
                                  std::string name = Text(s, 0);
                                  index[name] = {report.workloads.size(), from};
                                  report.workloads.emplace_back().name = std::move(name);
                                  ok.emplace_back();
                                  causes.emplace_back();
                                }));
  auto has_due = db.HasColumn("requests", "due_ns");  // older databases do not say
  if (!has_due.ok()) return has_due.status();
  // One pass over the requests, each matched to its workload here: joined in SQL, SQLite looks
  // every request's workload up in the workloads' index (six times the time of the scan).
  std::vector<double> late;
  const std::string requests = std::string(
                                   "SELECT workload, status, end_ns - start_ns, start_ns, end_ns, "
                                   "request_bytes + response_bytes, error") +
                               (*has_due ? ", start_ns - due_ns" : "") +
                               " FROM requests WHERE workload IS NOT NULL AND start_ns IS NOT NULL";
  ENOKI_RETURN_IF_ERROR(db.Each(requests.c_str(), [&](sqlite3_stmt* s) {
    auto it = index.find(TextView(s, 0));
    int64_t start = sqlite3_column_int64(s, 3);
    if (it == index.end() || start < it->second.from) return;
    size_t i = it->second.i;
    if (*has_due) {
      double ms = static_cast<double>(sqlite3_column_int64(s, 7)) / 1e6;
      late.push_back(ms);
      if (ms > kOverloadedLateMs) ++report.late_over;
    }
    WorkloadSummary& w = report.workloads[i];
    ++w.count;
    if (TextView(s, 1) != "OK") {
      ++w.errors;
      std::string error = Text(s, 6);
      ++causes[i][Text(s, 1) + (error.empty() ? "" : ": " + error)];
      return;
    }
    Ok& o = ok[i];
    o.ms.push_back(static_cast<double>(sqlite3_column_int64(s, 2)) / 1e6);
    o.bytes += sqlite3_column_int64(s, 5);
    o.first = std::min(o.first, start);
    o.last = std::max<int64_t>(o.last, sqlite3_column_int64(s, 4));
  }));
  if (*has_due) report.late_ms = Spread::Of(late);
  auto has_processes = db.HasColumn("processes", "timer_max_ns");  // older databases: none
  if (!has_processes.ok()) return has_processes.status();
  if (*has_processes) {
    ENOKI_RETURN_IF_ERROR(db.Each(
        "SELECT process, role, host, window_ns, timer_count, timer_p50_ns, timer_p99_ns, "
        "timer_max_ns, delivery_count, delivery_p50_ns, delivery_p99_ns, delivery_max_ns, cpu_ns, "
        "host_busy, host_cores FROM processes ORDER BY rowid",
        [&](sqlite3_stmt* s) {
          ProcessRecord& p = report.processes.emplace_back();
          p.process = Text(s, 0);
          p.role = Text(s, 1);
          proto::LoopStats& l = p.stats;
          l.set_host(Text(s, 2));
          l.set_window_ns(sqlite3_column_int64(s, 3));
          for (auto [lateness, at] :
               {std::pair{l.mutable_timers(), 4}, std::pair{l.mutable_deliveries(), 8}}) {
            lateness->set_count(static_cast<uint64_t>(sqlite3_column_int64(s, at)));
            lateness->set_p50_ns(sqlite3_column_int64(s, at + 1));
            lateness->set_p99_ns(sqlite3_column_int64(s, at + 2));
            lateness->set_max_ns(sqlite3_column_int64(s, at + 3));
          }
          l.set_cpu_ns(sqlite3_column_int64(s, 12));
          l.set_host_busy(sqlite3_column_double(s, 13));
          l.set_host_cores(static_cast<uint32_t>(sqlite3_column_int(s, 14)));
        }));
  }
  for (size_t i = 0; i < report.workloads.size(); ++i) {
    WorkloadSummary& w = report.workloads[i];
    Ok& o = ok[i];
    w.ms = Spread::Of(o.ms);
    w.causes.assign(causes[i].begin(), causes[i].end());
    std::stable_sort(w.causes.begin(), w.causes.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (o.last > o.first) {
      double seconds = static_cast<double>(o.last - o.first) / 1e9;
      w.ok_per_s = static_cast<double>(o.ms.size()) / seconds;
      w.ok_mb_per_s = static_cast<double>(o.bytes) / 1e6 / seconds;
    }
  }
  std::map<std::tuple<std::string, std::string, bool>, std::pair<int64_t, std::vector<double>>>
      ops;  // (function, kind, local) -> errors, durations
  ENOKI_RETURN_IF_ERROR(db.Each(
      "SELECT function, kind, local, status, end_ns - start_ns FROM kv_ops", [&](sqlite3_stmt* s) {
        auto& [errors, ms] = ops[{Text(s, 0), Text(s, 1), sqlite3_column_int(s, 2) != 0}];
        std::string status = Text(s, 3);
        if (status != "OK" && !(Text(s, 1) == "get" && status == "NOT_FOUND")) ++errors;
        ms.push_back(static_cast<double>(sqlite3_column_int64(s, 4)) / 1e6);
      }));
  for (auto& [key, value] : ops) {
    auto& [function, kind, local] = key;
    report.kv_ops.push_back({function, kind, local, value.first, Spread::Of(value.second)});
  }
  std::map<std::string, std::vector<double>> lags, stale;
  std::map<std::string, int64_t> reads;
  ENOKI_RETURN_IF_ERROR(
      db.Each("SELECT keygroup, lag_ns FROM replica_applies", [&](sqlite3_stmt* s) {
        lags[Text(s, 0)].push_back(static_cast<double>(sqlite3_column_int64(s, 1)) / 1e6);
      }));
  ENOKI_RETURN_IF_ERROR(
      db.Each("SELECT keygroup, staleness_ns FROM read_staleness", [&](sqlite3_stmt* s) {
        ++reads[Text(s, 0)];
        int64_t ns = sqlite3_column_int64(s, 1);
        auto& of = stale[Text(s, 0)];
        if (ns > 0) of.push_back(static_cast<double>(ns) / 1e6);
      }));
  auto has_client_staleness = db.HasColumn("client_staleness", "staleness_ns");  // older: none
  if (!has_client_staleness.ok()) return has_client_staleness.status();
  if (*has_client_staleness) {
    std::map<std::string, std::vector<double>> ms;
    ENOKI_RETURN_IF_ERROR(db.Each(
        "SELECT w.name, w.stale_against, c.staleness_ns FROM workloads w LEFT JOIN "
        "client_staleness c ON c.workload = w.name AND c.start_ns >= w.start_ns + w.warmup_ns "
        "WHERE w.stale_against != '' ORDER BY w.rowid",
        [&](sqlite3_stmt* s) {
          if (report.client_staleness.empty() ||
              report.client_staleness.back().reads != Text(s, 0)) {
            ClientStalenessSummary summary;
            summary.reads = Text(s, 0);
            summary.writes = Text(s, 1);
            report.client_staleness.push_back(std::move(summary));
          }
          if (sqlite3_column_type(s, 2) == SQLITE_NULL) return;  // no reads
          ClientStalenessSummary& c = report.client_staleness.back();
          int64_t ns = sqlite3_column_int64(s, 2);
          ++c.count;
          if (ns < 0) {
            ++c.unmatched;
            return;
          }
          if (ns > 0) ++c.stale;
          ms[c.reads].push_back(static_cast<double>(ns) / 1e6);
        }));
    for (auto& c : report.client_staleness) c.ms = Spread::Of(ms[c.reads]);
  }
  std::set<std::string> keygroups;
  for (const auto& [k, v] : lags) keygroups.insert(k);
  for (const auto& [k, v] : reads) keygroups.insert(k);
  for (const auto& k : keygroups) {
    report.replication.push_back({k, Spread::Of(lags[k]), reads[k], Spread::Of(stale[k])});
  }
  ENOKI_RETURN_IF_ERROR(db.Each(
      "SELECT keygroup, converged, node, items, digest, error FROM replicas ORDER BY rowid",
      [&](sqlite3_stmt* s) {
        if (report.keygroups.empty() || report.keygroups.back().keygroup != Text(s, 0)) {
          report.keygroups.push_back({Text(s, 0), sqlite3_column_int(s, 1) != 0, {}});
        }
        report.keygroups.back().replicas.push_back({Text(s, 2), sqlite3_column_int64(s, 3),
                                                    std::strtoull(Text(s, 4).c_str(), nullptr, 16),
                                                    Text(s, 5)});
      }));
  ENOKI_RETURN_IF_ERROR(
      db.Each("SELECT at_ns, detail FROM events WHERE kind = 'error' ORDER BY at_ns, rowid",
              [&](sqlite3_stmt* s) {
                report.errors.push_back({sqlite3_column_int64(s, 0), "error", Text(s, 1)});
              }));
  return report;
}

std::string Report::OverloadCauses() const {
  std::string causes;
  auto add = [&](const std::string& cause) { causes += (causes.empty() ? "" : "; ") + cause; };
  char line[256];
  if (late_ms.p99 > kOverloadedLateMs) {
    std::snprintf(line, sizeof line,
                  "the callers' sends %.3f ms late at p99 (%lld more than %g ms)", late_ms.p99,
                  static_cast<long long>(late_over), kOverloadedLateMs);
    add(line);
  }
  for (const auto& p : processes) {
    for (auto [what, lateness] :
         {std::pair{"timers", &p.stats.timers()}, std::pair{"deliveries", &p.stats.deliveries()}}) {
      double p99_ms = static_cast<double>(lateness->p99_ns()) / 1e6;
      if (p99_ms <= kOverloadedLateMs) continue;
      std::string who = p.role == "driver" ? "the driver" : p.role + " " + p.process;
      std::snprintf(line, sizeof line, "%s's %s %.3f ms late at p99 (max %.3f)", who.c_str(), what,
                    p99_ms, static_cast<double>(lateness->max_ns()) / 1e6);
      add(line);
    }
  }
  return causes;
}

int64_t Report::ClockErrorNs(const std::string& node) const {
  int64_t most = 0;
  for (const auto& c : clocks) {
    if (c.node == node) most = std::max(most, c.estimate.error_ns);
  }
  return most;
}

int64_t Report::CrossNodeErrorNs() const {
  std::set<std::string> nodes;
  for (const auto& c : clocks) {
    if (c.role == "node") nodes.insert(c.node);
  }
  std::vector<int64_t> bounds;
  for (const auto& n : nodes) bounds.push_back(ClockErrorNs(n));
  std::sort(bounds.rbegin(), bounds.rend());
  return (bounds.size() > 0 ? bounds[0] : 0) + (bounds.size() > 1 ? bounds[1] : 0);
}

std::string FormatReport(const Report& r) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%s: %s, %s links, seed %llu%s%s\n", r.run.scenario.c_str(),
                r.run.mode.c_str(), r.run.backend.c_str(),
                static_cast<unsigned long long>(r.run.seed),
                r.run.time_scale < 1 ? ", shortened" : "", r.interrupted ? ", INTERRUPTED" : "");
  out += line;
  int width = 20;
  for (const auto& w : r.workloads) width = std::max(width, static_cast<int>(w.name.size()));
  std::snprintf(line, sizeof line, "%-*s %8s %7s %9s %8s %10s %10s %10s %10s\n", width, "workload",
                "requests", "errors", "OK/s", "MB/s", "p50 ms", "p95 ms", "p99 ms", "max ms");
  out += line;
  for (const auto& w : r.workloads) {
    std::snprintf(line, sizeof line, "%-*s %8lld %7lld %9.1f %8.3f %10.3f %10.3f %10.3f %10.3f\n",
                  width, w.name.c_str(), static_cast<long long>(w.count),
                  static_cast<long long>(w.errors), w.ok_per_s, w.ok_mb_per_s, w.ms.p50, w.ms.p95,
                  w.ms.p99, w.ms.max);
    out += line;
  }
  // Why calls failed, one line per cause with its count; a workload most of whose calls failed
  // is flagged, as its latencies describe the few that did not.
  constexpr size_t kMaxCauses = 5;
  for (const auto& w : r.workloads) {
    if (w.causes.empty()) continue;
    out += "workload " + w.name + ": " + std::to_string(w.errors) + " of " +
           std::to_string(w.count) + " calls failed" +
           (2 * w.errors > w.count ? " (MOST CALLS FAILED)" : "") + ":\n";
    for (size_t c = 0; c < w.causes.size() && c < kMaxCauses; ++c) {
      std::snprintf(line, sizeof line, "  %8lld x ", static_cast<long long>(w.causes[c].second));
      out += line + w.causes[c].first + "\n";
    }
    if (w.causes.size() > kMaxCauses) {
      out += "  (" + std::to_string(w.causes.size() - kMaxCauses) + " other causes)\n";
    }
  }
  if (!r.kv_ops.empty()) {
    out += "store operations of functions:\n";
    std::snprintf(line, sizeof line, "  %-20s %-6s %-6s %8s %7s %10s %10s %10s\n", "function",
                  "kind", "where", "count", "errors", "p50 ms", "p99 ms", "max ms");
    out += line;
    for (const auto& k : r.kv_ops) {
      std::snprintf(line, sizeof line, "  %-20s %-6s %-6s %8lld %7lld %10.3f %10.3f %10.3f\n",
                    k.function.c_str(), k.kind.c_str(), k.local ? "local" : "remote",
                    static_cast<long long>(k.ms.count), static_cast<long long>(k.errors), k.ms.p50,
                    k.ms.p99, k.ms.max);
      out += line;
    }
  }
  // Across hosts, lag and staleness are differences of two nodes' clocks, aligned within a bound.
  std::string bound;
  if (r.run.mode == "cluster" && r.clocks.empty()) {
    out +=
        "replication lag, staleness, store operations: not measured (this cluster run did not "
        "fetch the nodes' traces)\n";
  } else if (!r.clocks.empty()) {
    std::set<std::string> nodes, hosts;
    std::string worst, worst_host;
    for (const auto& c : r.clocks) {
      bool node = c.role == "node";
      (node ? nodes : hosts).insert(c.node);
      std::string& w = node ? worst : worst_host;
      if (w.empty() || r.ClockErrorNs(c.node) > r.ClockErrorNs(w)) w = c.node;
    }
    if (!hosts.empty()) {
      std::snprintf(line, sizeof line,
                    "clocks of %zu client host%s aligned to the driver's, each within +-%.3f ms "
                    "(at most: %s): their requests' times on the run's time line\n",
                    hosts.size(), hosts.size() == 1 ? "" : "s",
                    static_cast<double>(r.ClockErrorNs(worst_host)) / 1e6, worst_host.c_str());
      out += line;
    }
    double across_ms = static_cast<double>(r.CrossNodeErrorNs()) / 1e6;
    std::snprintf(line, sizeof line, " (+-%.3f ms: clocks aligned)", across_ms);
    bound = line;
    if (!nodes.empty()) {
      std::snprintf(line, sizeof line,
                    "clocks of %zu nodes aligned to the driver's, each within +-%.3f ms (at most: "
                    "%s); a lag or staleness across two nodes within +-%.3f ms\n",
                    nodes.size(), static_cast<double>(r.ClockErrorNs(worst)) / 1e6, worst.c_str(),
                    across_ms);
      out += line;
    }
  }
  if (r.run.mode != "simulate" && r.late_ms.count > 0) {
    std::snprintf(line, sizeof line,
                  "callers' sends against their schedule: late by p50 %.3f, p99 %.3f, max %.3f "
                  "ms\n",
                  r.late_ms.p50, r.late_ms.p99, r.late_ms.max);
    out += line;
  }
  if (!r.processes.empty()) {
    out +=
        "how late each process ran its timers and handed on shaped messages (ms after their "
        "time), its CPU time and its host's busy share over the run:\n";
    std::snprintf(line, sizeof line, "  %-20s %9s %9s %9s %11s %9s %9s %8s %10s\n", "process",
                  "timer p50", "p99", "max", "deliv. p50", "p99", "max", "CPU s", "host busy");
    out += line;
    auto ms = [](int64_t ns) { return static_cast<double>(ns) / 1e6; };
    for (const auto& p : r.processes) {
      const proto::LoopStats& l = p.stats;
      std::string name = p.role == "client host" ? p.process + " (client host)" : p.process;
      char busy[48] = "unknown";
      if (l.host_busy() >= 0) {
        std::snprintf(busy, sizeof busy, "%.0f%% of %u", 100 * l.host_busy(), l.host_cores());
      }
      std::snprintf(line, sizeof line, "  %-20s %9.3f %9.3f %9.3f %11.3f %9.3f %9.3f %8.2f %10s\n",
                    name.c_str(), ms(l.timers().p50_ns()), ms(l.timers().p99_ns()),
                    ms(l.timers().max_ns()), ms(l.deliveries().p50_ns()),
                    ms(l.deliveries().p99_ns()), ms(l.deliveries().max_ns()), ms(l.cpu_ns()) / 1e3,
                    busy);
      out += line;
    }
  }
  if (std::string causes = r.OverloadCauses(); !causes.empty()) {
    out += "OVERLOADED: " + causes +
           ": the host did not keep the schedule, and what it measured is suspect (--strict fails "
           "such a run)\n";
  }
  for (const auto& c : r.client_staleness) {
    std::string matched =
        c.unmatched == 0 ? "" : " of the " + std::to_string(c.count - c.unmatched) + " matched";
    std::snprintf(line, sizeof line,
                  "staleness at the client (the paper's) of %s against %s: %lld reads, %lld "
                  "stale (%.1f%%%s); p50 %.3f, p95 %.3f, p99 %.3f, max %.3f ms\n",
                  c.reads.c_str(), c.writes.c_str(), static_cast<long long>(c.count),
                  static_cast<long long>(c.stale), 100 * c.StaleShare(), matched.c_str(), c.ms.p50,
                  c.ms.p95, c.ms.p99, c.ms.max);
    out += line;
    if (c.unmatched > 0) {
      out += "  " + std::to_string(c.unmatched) + " of them matched no write of " + c.writes +
             " (left out)\n";
    }
  }
  for (const auto& k : r.replication) {
    if (k.lag_ms.count == 0) {
      out += "replication of " + k.keygroup + ": nothing applied at another replica\n";
    } else {
      std::snprintf(line, sizeof line,
                    "replication of %s: %lld applies, lag p50 %.3f, p95 %.3f, p99 %.3f, max %.3f "
                    "ms%s\n",
                    k.keygroup.c_str(), static_cast<long long>(k.lag_ms.count), k.lag_ms.p50,
                    k.lag_ms.p95, k.lag_ms.p99, k.lag_ms.max, bound.c_str());
      out += line;
    }
    if (k.reads == 0) continue;
    if (k.stale_ms.count == 0) {
      out += "  store-side staleness: " + std::to_string(k.reads) + " function reads, none stale\n";
      continue;
    }
    std::snprintf(line, sizeof line,
                  "  store-side staleness: %lld function reads, %lld stale (%.1f%%); staleness of "
                  "those p50 %.3f, p95 %.3f, p99 %.3f, max %.3f ms%s\n",
                  static_cast<long long>(k.reads), static_cast<long long>(k.stale_ms.count),
                  100.0 * static_cast<double>(k.stale_ms.count) / static_cast<double>(k.reads),
                  k.stale_ms.p50, k.stale_ms.p95, k.stale_ms.p99, k.stale_ms.max, bound.c_str());
    out += line;
  }
  if (!r.costs.empty()) {
    // One line per distinct cost (a large topology deploys one function at thousands of nodes).
    std::map<std::string, int> seen;
    std::vector<std::string> lines;
    std::set<std::string> sources;
    for (const auto& c : r.costs) {
      std::string what = c.what.substr(0, c.what.find(" at "));
      const sim::CostModel& m = c.model;
      if (!m.percentiles.empty()) {
        std::snprintf(line, sizeof line, "%s p50 %.3f ms, p99 %.3f", what.c_str(),
                      core::ToMillis(m.percentiles[50]), core::ToMillis(m.percentiles[99]));
      } else {
        std::snprintf(line, sizeof line, "%s %.3f ms", what.c_str(), core::ToMillis(m.mean));
      }
      std::string text = line;
      if (m.percentiles.empty() && m.jitter > core::Duration(0)) {
        std::snprintf(line, sizeof line, " %s %.3f",
                      m.distribution == net::LinkSpec::Jitter::kNormal ? "sd" : "+-",
                      core::ToMillis(m.jitter));
        text += line;
      }
      text += c.source == "scenario" ? " (scenario)" : " (calibrated)";
      if (c.source != "scenario") sources.insert(c.source);
      if (seen[text]++ == 0) lines.push_back(text);
    }
    out += "compute costs:";
    for (const auto& l : lines) {
      out += " " + l + (seen[l] > 1 ? " x" + std::to_string(seen[l]) : "") + ";";
    }
    out += "\n";
    for (const auto& src : sources) out += "  " + src + "\n";
  }
  size_t agree = 0;
  for (const auto& k : r.keygroups) agree += k.converged ? 1 : 0;
  if (r.keygroups.size() > 20) {  // many: the count, and the ones that differ
    out += std::to_string(r.keygroups.size()) + " keygroups: " + std::to_string(agree) +
           " with replicas that agree\n";
  }
  for (const auto& k : r.keygroups) {
    if (r.keygroups.size() > 20 && k.converged) continue;
    out += "keygroup " + k.keygroup + ":";
    for (const auto& rep : k.replicas) {
      out += " " + rep.node + " " + std::to_string(rep.items) + " items" +
             (rep.error.empty() ? "" : " (" + rep.error + ")") + ";";
    }
    out += k.converged ? " replicas agree\n" : " REPLICAS DIFFER\n";
  }
  out += "(latencies of the OK requests after each workload's warm-up; errors: the others)\n";
  for (const auto& e : r.errors) {
    std::snprintf(line, sizeof line, "ERROR at %.3f s: ", static_cast<double>(e.at_ns) / 1e9);
    out += line + e.detail + "\n";
  }
  out += "results: " + r.database + "\n";
  if (r.run.mode == "emulate" && r.database.ends_with(".db")) {
    out += "logs: " + r.database.substr(0, r.database.size() - 3) +
           "/logs/ (each node's NODE.log, and its functions' NODE.functions.log)\n";
  }
  return out;
}

namespace {

// One table of `enoki report A B`: a row per name that both runs have, each measure shown as A's
// value, B's and how B compares (B/A, or B-A for shares and for staleness, which is 0 when fresh).
class ComparisonTable {
 public:
  enum class Compare { kRatio, kDifference };
  struct Measure {
    std::string label;  // "p50"; the share of stale reads: "stale"
    Compare compare;
    bool percent = false;  // values are fractions, shown as percentages (differences in points)
  };

  ComparisonTable(std::string title, int width, std::vector<Measure> measures)
      : title_(std::move(title)), width_(width), measures_(std::move(measures)) {}

  // A row: one (A, B) pair per measure.
  void Row(const std::string& name, const std::vector<std::pair<double, double>>& values) {
    std::string line = fmt::format("{:<{}}", name, width_);
    for (size_t i = 0; i < measures_.size(); ++i) {
      auto [a, b] = values[i];
      const Measure& m = measures_[i];
      double compared = m.compare == Compare::kDifference ? b - a : (a > 0 ? b / a : 0.0);
      line += m.percent
                  ? fmt::format(" {:7.1f}% {:7.1f}% {:7.1f}", 100 * a, 100 * b, 100 * compared)
                  : fmt::format(" {:10.3f} {:10.3f} {:7.3f}", a, b, compared);
    }
    text_ += line + "\n";
    ++rows_;
  }
  // A line of its own among the rows ("w: only in A").
  void Note(const std::string& line) { text_ += line + "\n"; }
  size_t rows() const { return rows_; }

  // The header, the rows and notes, then `legend`.
  std::string Text(const std::string& legend) const {
    std::string header = fmt::format("{:<{}}", title_, width_);
    for (const auto& m : measures_) {
      const char* compared =
          m.compare == Compare::kDifference ? (m.percent ? "B-A pp" : "B-A") : "B/A";
      header += m.percent
                    ? fmt::format(" {:>8} {:>8} {:>7}", "A " + m.label, "B " + m.label, compared)
                    : fmt::format(" {:>10} {:>10} {:>7}", "A " + m.label, "B " + m.label, compared);
    }
    return header + "\n" + text_ + legend + "\n";
  }

 private:
  std::string title_;
  int width_;
  std::vector<Measure> measures_;
  std::string text_;
  size_t rows_ = 0;
};

// The row of `a` whose `key` matches, in `b` (nullptr: none).
template <typename T, typename Key>
const T* Match(const std::vector<T>& b, const T& a, Key key) {
  auto it = std::find_if(b.begin(), b.end(), [&](const T& t) { return key(t) == key(a); });
  return it == b.end() ? nullptr : &*it;
}

}  // namespace

std::string FormatComparison(const Report& a, const Report& b) {
  using Compare = ComparisonTable::Compare;
  auto name = [](const Report& r) {
    return r.run.scenario + " (" + r.run.mode + ", " + r.run.backend + ", seed " +
           std::to_string(r.run.seed) + ")";
  };
  std::string out =
      "A: " + name(a) + "  " + a.database + "\nB: " + name(b) + "  " + b.database + "\n";
  int width = 20;
  for (const auto& w : a.workloads) width = std::max(width, static_cast<int>(w.name.size()));

  auto workload = [](const WorkloadSummary& w) { return w.name; };
  ComparisonTable latencies(
      "workload", width,
      {{"p50", Compare::kRatio}, {"p95", Compare::kRatio}, {"p99", Compare::kRatio}});
  for (const auto& wa : a.workloads) {
    const WorkloadSummary* wb = Match(b.workloads, wa, workload);
    if (wb == nullptr) {
      latencies.Note(wa.name + ": only in A");
      continue;
    }
    latencies.Row(wa.name,
                  {{wa.ms.p50, wb->ms.p50}, {wa.ms.p95, wb->ms.p95}, {wa.ms.p99, wb->ms.p99}});
  }
  for (const auto& wb : b.workloads) {
    if (Match(a.workloads, wb, workload) == nullptr) latencies.Note(wb.name + ": only in B");
  }
  out += latencies.Text("(latencies in ms of the OK requests after each workload's warm-up)");

  ComparisonTable staleness("staleness at client", width,
                            {{"stale", Compare::kDifference, /*percent=*/true},
                             {"p50", Compare::kDifference},
                             {"p99", Compare::kDifference}});
  for (const auto& ca : a.client_staleness) {
    const ClientStalenessSummary* cb =
        Match(b.client_staleness, ca, [](const ClientStalenessSummary& c) { return c.reads; });
    if (cb == nullptr) continue;
    staleness.Row(
        ca.reads,
        {{ca.StaleShare(), cb->StaleShare()}, {ca.ms.p50, cb->ms.p50}, {ca.ms.p99, cb->ms.p99}});
  }
  if (staleness.rows() > 0) {
    out += staleness.Text(
        "(the paper's staleness: the share of reads that returned an overwritten value, in "
        "percentage points apart, and the staleness in ms of every read, 0 when fresh, ms "
        "apart)");
  }

  ComparisonTable lag("replication lag", width,
                      {{"p50", Compare::kRatio}, {"p99", Compare::kRatio}});
  for (const auto& ka : a.replication) {
    const ReplicationSummary* kb =
        Match(b.replication, ka, [](const ReplicationSummary& k) { return k.keygroup; });
    if (kb == nullptr || ka.lag_ms.count == 0 || kb->lag_ms.count == 0) continue;
    lag.Row(ka.keygroup, {{ka.lag_ms.p50, kb->lag_ms.p50}, {ka.lag_ms.p99, kb->lag_ms.p99}});
  }
  if (lag.rows() > 0)
    out += lag.Text("(ms from the commit at the origin to durable at another replica)");

  for (const auto& [r, which] : {std::pair{&a, "A"}, std::pair{&b, "B"}}) {
    if (r->run.mode == "cluster" && r->run.backend == "network") {
      out += std::string("(") + which +
             "'s links are the real network's, not the scenario's: it ran before the cluster "
             "mode shaped links)\n";
    }
  }
  for (const auto& [r, which] : {std::pair{&a, "A"}, std::pair{&b, "B"}}) {
    if (!r->errors.empty()) {
      out += which + std::string(" recorded ") + std::to_string(r->errors.size()) +
             " error(s), the first: " + r->errors[0].detail + "\n";
    }
  }
  return out;
}

core::Status ExportRequestsCsv(const std::string& database, const std::string& csv_path) {
  std::ofstream out(csv_path, std::ios::binary | std::ios::trunc);
  if (!out) return core::Status::IOError("cannot write " + csv_path);
  auto quoted = [](const std::string& v) {
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  out << "workload,client,caller,seq,function,node,start_ns,end_ns,status,error,request_bytes,"
         "response_bytes\n";
  Reader db(database);
  ENOKI_RETURN_IF_ERROR(db.Each(
      "SELECT workload, client, caller, seq, function, node, start_ns, end_ns, status, error, "
      "request_bytes, response_bytes FROM requests ORDER BY start_ns",
      [&](sqlite3_stmt* s) {
        for (int c = 0; c < 12; ++c) {
          bool text = sqlite3_column_type(s, c) == SQLITE_TEXT;
          out << (c == 0 ? "" : ",") << (text ? quoted(Text(s, c)) : Text(s, c));
        }
        out << "\n";
      }));
  out.close();
  if (!out) return core::Status::IOError("cannot write " + csv_path);
  return core::Status::Ok();
}

}  // namespace enoki::testbed
