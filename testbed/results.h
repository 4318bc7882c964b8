// ResultsDb: the SQLite database one run writes (docs/results.md is the schema's reference): the
// run, the link table, every request, every timeline event, every item write at its origin and
// at each replica, every store operation of a function, in the cluster mode the nodes' clock
// offsets, and in real time how late each process's loop was and the CPU it used. Times are
// nanoseconds since the run's start on the host's monotonic clock, which every process of an
// emulation shares (the cluster mode moves each node's times to the driver's clock).
#pragma once

#include <sqlite3.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/link_model.h"
#include "net/proto/enoki.pb.h"
#include "sim/cost_model.h"

namespace enoki::testbed {

struct RunInfo {
  std::string scenario;  // its name
  std::string file;
  std::string text;  // the scenario file as it was run
  uint64_t seed = 0;
  std::string mode;     // emulate, simulate, cluster
  std::string backend;  // shaper, netem, virtual, network (cluster: not shaped)
  std::string version;
  std::string host;
  std::string started_at;  // wall clock, ISO 8601 UTC
  double time_scale = 1;   // < 1 when shortened with --duration
};

struct RequestRecord {
  std::string workload, client, function, node;
  int caller = 0;
  int64_t seq = 0;
  int64_t start_ns = 0, end_ns = 0;  // at the client, after the client link both ways
  std::string status;                // OK, or the error code (TIMEOUT when no answer came)
  std::string error;
  int64_t request_bytes = 0, response_bytes = 0;
  // FNV-1a of the response's body, as a signed integer: which value a read returned, for the
  // staleness at the client (testbed/staleness.h). Only for OK answers of a workload with
  // stale_against and of the one it names; 0 otherwise (hashing costs 1.2 ms a MiB).
  int64_t response_digest = 0;
  // When the caller's schedule had it sent (open loop: its arrival; closed loop: the last
  // answer's end and the think time): start_ns less this is how late the sender was.
  int64_t due_ns = 0;
};

// One read's staleness at the client (testbed/staleness.h).
struct ClientStalenessRecord {
  std::string workload;  // the reads'
  int caller = 0;
  int64_t seq = 0;
  int64_t start_ns = 0, end_ns = 0;
  // The read's end less the end of the write that overwrote the value it returned; 0 when that
  // write had not ended by then (or none did); -1 when no write matched it: it returned a value
  // no write wrote, nor the empty value before the first (or only writes that started after it
  // ended wrote it).
  int64_t staleness_ns = 0;
};

// A compute cost a simulation gave (the emulation's are real and records none).
struct CostRecord {
  std::string what;  // "commit", or "function NAME at NODE,NODE"
  sim::CostModel model;
  std::string source;  // "scenario", or "calibrated: <where and when>"
};

// A workload as it ran (times after any shortening), for the summary's warm-up cut.
struct WorkloadRecord {
  std::string name, client, function, node;
  int64_t start_ns = 0;       // from the run's start
  int64_t warmup_ns = 0;      // cut from its start
  std::string stale_against;  // WorkloadDecl::stale_against
};

// After the run, what each replica of a keygroup holds, and whether they all agree.
struct ReplicaState {
  std::string node;
  int64_t items = 0;
  uint64_t digest = 0;  // of every key and value, in key order (FNV-1a)
  std::string error;    // when the replica could not be read
};
struct KeygroupCheck {
  std::string keygroup;
  bool converged = false;  // every replica holds the same items
  std::vector<ReplicaState> replicas;
};

// The cluster mode: what the real network under link a -> b gave before the run, and the delay
// the shaping added on top of it.
struct NetworkRecord {
  std::string src, dst;
  double rtt_min_ms = 0, rtt_median_ms = 0;
  int probes = 0;  // round trips measured
  double added_delay_ms = 0;
};

struct EventRecord {
  int64_t at_ns = 0;
  std::string kind;  // phase, link, partition, heal, crash, restart, error
  std::string detail;
};

// An estimate of a node's clock offset, from timestamped exchanges with it (the cluster mode
// aligns the nodes' clocks to the driver's: testbed/remote_traces.h).
struct ClockEstimate {
  int64_t at_ns = 0;      // when, on the driver's clock: the middle of the exchanges kept
  int64_t offset_ns = 0;  // the node's trace clock minus the driver's
  int64_t error_ns = 0;   // the true offset lies within offset_ns +- error_ns
  int64_t rtt_ns = 0;     // the smallest round trip of the exchanges
  int exchanges = 0;      // made
  int kept = 0;           // of which the estimate used: those with the smallest round trips
};
struct ClockRecord {
  std::string node;   // a node, or a client host
  std::string taken;  // "before" or "after" the run
  ClockEstimate estimate;
  std::string role = "node";  // "node" or "client host"
};

// How one process of a real-time run kept up over the run (adapters/loop_stats.h): its event
// loop's lateness and its CPU use, as it answered the `loop_stats` request at the run's end.
struct ProcessRecord {
  std::string process;  // a node's name, or "driver" (the run's own process, with its callers)
  std::string role;     // "node", "driver" or "client host"
  proto::LoopStats stats;
};

class ResultsDb {
 public:
  // Creates the database at `path` (which must not exist) with the schema.
  static core::Result<std::unique_ptr<ResultsDb>> Create(const std::string& path);
  ~ResultsDb();

  core::Status WriteRun(const RunInfo& run, bool interrupted);
  core::Status WriteLinks(
      const std::map<std::pair<std::string, std::string>, net::LinkSpec>& links);
  core::Status WriteRequests(const std::vector<RequestRecord>& requests);
  core::Status WriteClientStaleness(const std::vector<ClientStalenessRecord>& reads);
  core::Status WriteEvents(const std::vector<EventRecord>& events);
  core::Status WriteWorkloads(const std::vector<WorkloadRecord>& workloads);
  core::Status WriteCosts(const std::vector<CostRecord>& costs);
  // One row per replica of each keygroup, at the end of the run.
  core::Status WriteReplicas(const std::vector<KeygroupCheck>& checks);
  core::Status WriteNetwork(const std::vector<NetworkRecord>& network);
  // A node's trace into `writes` and `kv_ops`, its times made relative to the run's start,
  // `t0_ns` on the same clock. `source` calls its argument for every record (for a trace file,
  // adapters::ReadTraceFile) and says whether it could.
  using TraceSource =
      std::function<core::Status(const std::function<void(const proto::TraceRecord&)>&)>;
  core::Status WriteTrace(const std::string& node, const TraceSource& source, int64_t t0_ns);
  // The nodes' clock estimates (the cluster mode), `at_ns` made relative to the run's start,
  // `t0_ns` on the driver's clock.
  core::Status WriteClocks(const std::vector<ClockRecord>& clocks, int64_t t0_ns);
  // How each process of a real-time run kept up (none in a simulation: virtual time is never
  // late).
  core::Status WriteProcesses(const std::vector<ProcessRecord>& processes);
  const std::string& path() const { return path_; }

 private:
  ResultsDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  core::Status Exec(const std::string& sql);
  // Rolls back the open transaction; the error names `table`.
  core::Status Abort(const std::string& table);

  sqlite3* db_;
  std::string path_;
};

// The time now, UTC, in strftime's `format`.
std::string UtcNow(const char* format);
// This machine, for a run's record: "hostname, N cores".
std::string HostDescription();

}  // namespace enoki::testbed
