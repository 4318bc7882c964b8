// Driver: a scenario's workloads and timeline, the part of a run that emulation and simulation
// share. On an Env (the event loop in real time, the simulator in virtual time) it runs the
// callers (open loops at their rate, periodic or Poisson; closed loops with their think time),
// gives each request its caller's timeout, records every request as it ends, applies the timeline
// (phases, link changes, partitions and heals, crashes and restarts), and keeps the links as they
// are now. How a request reaches its node and comes back, how a link is shaped and how a node
// crashes is the mode's (Driver::Mode).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/env.h"
#include "core/random.h"
#include "core/status.h"
#include "net/link_model.h"
#include "net/proto/enoki.pb.h"
#include "testbed/results.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

class Driver {
 public:
  using Pair = std::pair<std::string, std::string>;

  // What a mode does for the driver.
  class Mode {
   public:
    virtual ~Mode() = default;
    // Sends `request` of workload `w` from its client to its node. The answer, once at the
    // client, goes to Driver::Answer; a node that refused it at once to Driver::Refused; a lost
    // one nowhere (the caller's timeout ends it).
    virtual void Send(size_t w, const proto::Request& request) = 0;
    // The link a -> b is now `spec` (cut when partitioned).
    virtual void SetLink(const Pair& p, const net::LinkSpec& spec) = 0;
    // Kills the node as SIGKILL would; starts it again on its data.
    virtual void Crash(const std::string& node) = 0;
    virtual core::Status Restart(const std::string& node) = 0;
  };

  // `links`: the link of every pair that talks, as the run starts (testbed::LinkTable). Timeline
  // changes to other pairs change nothing.
  Driver(const Scenario& s, core::Env& env, Mode& mode, std::map<Pair, net::LinkSpec> links);

  // Starts the workloads and the timeline; now is the run's start.
  void Start();
  // Every caller is done, no request is in flight and no timeline event is to come.
  bool Done() const;

  // An answer reached its client (one no longer in flight, after its timeout, is ignored).
  void Answer(const proto::Response& response);
  // Request `id` was refused at once (its node is down): it ends as UNAVAILABLE with `why`.
  void Refused(uint64_t id, const std::string& why);
  bool InFlight(uint64_t id) const { return in_flight_.contains(id); }

  // The link a -> b as it is now: its spec, cut while partitioned.
  net::LinkSpec Current(const Pair& p) const;
  // The pairs that talk (those of the links given).
  std::vector<Pair> Pairs() const;
  bool Partitioned(const Pair& p) const { return partitioned_.contains(p); }

  // Adds a timeline event (kind: phase, link, partition, heal, crash, restart, error) now.
  void Record(const std::string& kind, const std::string& detail);

  core::TimePoint start() const { return t0_; }
  const std::vector<RequestRecord>& requests() const { return records_; }
  const std::vector<EventRecord>& events() const { return events_; }
  int64_t errors() const { return errors_; }
  // Keeps the latencies of OK requests for TakeRecentMs (off by default).
  void KeepRecent(bool keep) { keep_recent_ = keep; }
  // Latencies (ms) of the OK requests since the last call, for a progress line.
  std::vector<double> TakeRecentMs() { return std::exchange(recent_ms_, {}); }

 private:
  struct InFlightRequest {
    size_t workload;
    int caller;
    int64_t seq;
    core::TimePoint start;
    int64_t request_bytes;
  };
  struct Caller {
    int64_t sent = 0;
    bool done = false;
    core::TimePoint next_send{};  // open loop: when the next request is due
  };
  struct WorkloadRun {
    std::vector<Caller> callers;
    core::TimePoint end = core::TimePoint::max();  // no request starts at or after it
    core::Duration timeout{};
    // The workload's requests by deadline (one timeout for all: sending order), answered ones
    // included until the timer finds them; one timer while it is not empty.
    std::deque<std::pair<core::TimePoint, uint64_t>> deadlines;
    core::StreamRng rng;  // its own stream (core/random.h): arrivals and bodies
  };

  void StartWorkload(size_t w);
  core::Duration OpenLoopGap(size_t w, bool first);
  void Send(size_t w, int c);
  // Ends the requests of workload `w` past their deadline as TIMEOUT; arms the timer for the next.
  void ExpireRequests(size_t w);
  void Finish(const InFlightRequest& f, const std::string& status, const std::string& error,
              int64_t response_bytes);
  void Apply(const TimelineEvent& e);
  void ApplyLink(const Pair& p) { mode_.SetLink(p, Current(p)); }
  int64_t Ns(core::TimePoint t) const { return (t - t0_).count(); }

  const Scenario& s_;
  core::Env& env_;
  Mode& mode_;
  std::map<Pair, net::LinkSpec> links_;  // as they are now (timeline link changes included)
  std::set<Pair> partitioned_;
  std::vector<WorkloadRun> runs_;
  std::unordered_map<uint64_t, InFlightRequest> in_flight_;
  std::vector<RequestRecord> records_;
  std::vector<EventRecord> events_;
  std::vector<double> recent_ms_;
  bool keep_recent_ = false;
  core::TimePoint t0_{};
  uint64_t next_request_ = 1;
  int64_t active_callers_ = 0;
  int64_t pending_events_ = 0;
  int64_t errors_ = 0;
};

// What a replica holds, read page by page: its items and their digest (FNV-1a over every key and
// value, in key order), or the error that stopped the reading.
class ReplicaReader {
 public:
  explicit ReplicaReader(std::string node);
  // Takes the next page (a scan from start(), the first from ""). Returns whether another page
  // is to be read.
  bool Add(const proto::ScanResult& page);
  // The reading stopped here: no items, no digest, and why.
  void Fail(std::string error) {
    state_.items = 0;
    state_.digest = 0;
    state_.error = std::move(error);
  }
  // Where the next page starts.
  const std::string& start() const { return start_; }
  const ReplicaState& state() const { return state_; }

 private:
  ReplicaState state_;
  std::string start_;
};

// Reads a replica with `page(start)`, one page after the other.
ReplicaState ReadReplica(
    const std::string& node,
    const std::function<core::Result<proto::ScanResult>(const std::string& start)>& page);

// (keygroup, node): one replica.
using ReplicaId = std::pair<std::string, std::string>;

// Reads every replica of every keygroup with `read(replicas)` (their states, in the same order)
// until they agree or `wait_more()` (called between rounds; it waits, in real or virtual time)
// says to stop. Each round reads the replicas of the keygroups that did not agree yet.
std::vector<KeygroupCheck> CheckReplicas(
    const Scenario& s,
    const std::function<std::vector<ReplicaState>(const std::vector<ReplicaId>& replicas)>& read,
    const std::function<bool()>& wait_more);

// Writes what a run recorded into `db`: its workloads, the run, the links, the requests, the
// events and the replica checks.
core::Status WriteResults(ResultsDb& db, const Scenario& s, const RunInfo& info, bool interrupted,
                          const std::map<Driver::Pair, net::LinkSpec>& links,
                          const std::vector<RequestRecord>& requests,
                          const std::vector<EventRecord>& events,
                          const std::vector<KeygroupCheck>& checks);

}  // namespace enoki::testbed
