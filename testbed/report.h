// Report: reads a run's results database (docs/results.md) back and summarizes it: per workload,
// the requests, errors and latency percentiles after the warm-up cut; whether the replicas
// converged. `enoki emulate` prints it at the end of a run, `enoki report` any time later.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "testbed/results.h"

namespace enoki::testbed {

// One workload's numbers, after its warm-up cut.
struct WorkloadSummary {
  std::string name;
  int64_t count = 0;                                      // requests that ended
  int64_t errors = 0;                                     // of which failed or timed out
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;  // of the successful ones
  // Successful requests per second: their number over the time from the first one's start to
  // the last one's end.
  double ok_per_s = 0;
};

struct Report {
  std::string database;
  RunInfo run;
  bool interrupted = false;
  std::vector<WorkloadSummary> workloads;
  std::vector<KeygroupCheck> keygroups;
};

core::Result<Report> ReadReport(const std::string& database);
// The nearest-rank `q` quantile (0 < q <= 1) of sorted values; 0 for none.
double Percentile(const std::vector<double>& sorted, double q);
// The summary as the terminal shows it.
std::string FormatReport(const Report& report);
// Writes every request of the run as CSV (a header line, then the columns of `requests`).
core::Status ExportRequestsCsv(const std::string& database, const std::string& csv_path);

}  // namespace enoki::testbed
