// Report: reads a run's results database (docs/results.md) back and summarizes it: per workload,
// the requests, errors and latency percentiles after the warm-up cut; the functions' store
// operations; the staleness at the client (the paper's) of each workload of reads; replication lag
// and the store-side staleness per keygroup (in the cluster mode with the bound of the clocks'
// alignment); whether the replicas converged; in real time, how late the callers sent and how
// late each process's loop ran (an overloaded run is flagged).
// `enoki emulate` prints it at the end of a run, `enoki report` any time later.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "testbed/results.h"

namespace enoki::testbed {

// How a set of durations is spread, in ms (nearest-rank percentiles).
struct Spread {
  int64_t count = 0;
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
  // Of `ms`, which it sorts.
  static Spread Of(std::vector<double>& ms);
};

// One workload's numbers, after its warm-up cut.
struct WorkloadSummary {
  std::string name;
  int64_t count = 0;   // requests that ended
  int64_t errors = 0;  // of which failed or timed out
  Spread ms;           // latencies of the successful ones
  // Successful requests per second: their number over the time from the first one's start to
  // the last one's end; and their bytes (request and response bodies) per second, in MB (10^6),
  // over the same time: the paper's throughput in the scale experiment.
  double ok_per_s = 0;
  double ok_mb_per_s = 0;
  // Why the failed ones failed: "STATUS: error message" and how many, the most frequent first.
  std::vector<std::pair<std::string, int64_t>> causes;
};

// The store operations of one function, of one kind, served locally or by another node.
struct KvOpSummary {
  std::string function, kind;
  bool local = false;
  int64_t errors = 0;  // not OK (NOT_FOUND of a read counts as an answer, not an error)
  Spread ms;           // durations of all of them
};

// One keygroup's replication: lag from the commit at the origin to durable at each other
// replica; staleness of the functions' reads (docs/results.md: `read_staleness`).
struct ReplicationSummary {
  std::string keygroup;
  Spread lag_ms;
  int64_t reads = 0;
  Spread stale_ms;  // of the reads that returned an overwritten value (count: how many)
};

// The staleness at the client of one workload's reads against another's writes (the paper's:
// testbed/staleness.h), of the reads after their warm-up.
struct ClientStalenessSummary {
  std::string reads, writes;  // the workloads
  int64_t count = 0;          // OK reads
  int64_t stale = 0;          // of which returned an overwritten value
  int64_t unmatched = 0;      // of which returned a value no write wrote (not in `ms`)
  Spread ms;                  // the matched reads' staleness, 0 for a fresh one (the artifact's)
  double StaleShare() const {
    return count > unmatched ? static_cast<double>(stale) / static_cast<double>(count - unmatched)
                             : 0;
  }
};

// How late a caller's send against its schedule, a process's timer against its due time or a
// shaped message against its arrival time may be at their p99 before the run counts as
// overloaded: MockFog2's limit. The p99, not the max: this VM stalls whole for about 10 ms a few
// times in a quarter of an hour on a quiet host (every process at once), which says nothing of
// whether the host kept up; more than 1% of them that late does.
inline constexpr double kOverloadedLateMs = 5;

struct Report {
  std::string database;
  RunInfo run;
  bool interrupted = false;
  std::vector<WorkloadSummary> workloads;
  std::vector<KvOpSummary> kv_ops;
  std::vector<ReplicationSummary> replication;
  std::vector<ClientStalenessSummary> client_staleness;  // the paper's staleness
  // How late the callers sent against their schedule (start_ns - due_ns of the requests after
  // the warm-up; 0 in a simulation): what an overloaded host shows first.
  Spread late_ms;
  int64_t late_over = 0;  // sends more than kOverloadedLateMs late
  // How each process of a real-time run kept up (none in a simulation, or in older databases).
  std::vector<ProcessRecord> processes;
  // Why the run counts as overloaded, its causes joined by "; " (the callers' sends, and each
  // process's timers or deliveries, whose p99 was more than kOverloadedLateMs late); empty: it
  // does not. The report and `--strict` say this.
  std::string OverloadCauses() const;
  bool Overloaded() const { return !OverloadCauses().empty(); }
  std::vector<KeygroupCheck> keygroups;
  std::vector<EventRecord> errors;  // the run's `error` events: a node died, an event failed
  std::vector<CostRecord> costs;    // a simulation's compute costs
  std::vector<ClockRecord> clocks;  // the cluster mode's clock estimates, as the run wrote them
  // A node's clock error bound (the cluster mode): the largest of its estimates'; 0 for a node
  // without (an emulation's share one clock).
  int64_t ClockErrorNs(const std::string& node) const;
  // The most a time difference across two nodes (replication lag, staleness) may be off by: the
  // sum of the two largest nodes' bounds; 0 without clock estimates.
  int64_t CrossNodeErrorNs() const;
};

core::Result<Report> ReadReport(const std::string& database);
// The nearest-rank `q` quantile (0 < q <= 1) of sorted values; 0 for none.
double Percentile(const std::vector<double>& sorted, double q);
// The summary as the terminal shows it.
std::string FormatReport(const Report& report);
// Two runs side by side (for a simulation against an emulation of one scenario): per workload
// that both have, the p50, p95 and p99 of each and the ratios second / first; then the staleness
// at the client of each read workload both have (the share of stale reads, p50 and p99), and the
// replication lag of each keygroup both replicated (p50 and p99).
std::string FormatComparison(const Report& first, const Report& second);
// Writes every request of the run as CSV (a header line, then the columns of `requests`).
core::Status ExportRequestsCsv(const std::string& database, const std::string& csv_path);

}  // namespace enoki::testbed
