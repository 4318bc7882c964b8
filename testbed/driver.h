// Driver: one run's life cycle, written once for every mode. On an Env (the event loop in real
// time, the simulator in virtual time) and asynchronously, it sets the run up (creates the
// keygroups, waits until every node that deploys a function knows its keygroup, deploys the
// functions), runs the callers (open loops at their rate, periodic or Poisson; closed loops with
// their think time), gives each request its caller's timeout, records every request as it ends,
// applies the timeline (phases, link changes, partitions and heals, crashes and restarts), keeps
// the links as they are now, and once every request ended checks that the replicas of every
// keygroup converged. What differs between modes is the mode's (Driver::Mode): how a request
// reaches a node and comes back, how a link is shaped, how a node crashes and restarts. Starting
// and stopping the nodes, running the Env and writing the results database are the mode's entry
// point's (Simulate, Emulate, RunOnCluster), around the run.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
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

  // What a mode does for the driver, always on the Env's thread.
  class Mode {
   public:
    // A node's response (whatever its code), or why there is none: UNAVAILABLE when the node
    // refused the request at once (it is down), INTERNAL when another node answered it (a
    // mix-up; the addressed node will not answer).
    using OnReply = std::function<void(core::Result<proto::Response>)>;

    virtual ~Mode() = default;
    // Sends `request` to `node` from host `from`: a client node of the scenario, over its links
    // to and from the node, or "" for the driver itself (set-up and replica check), over no
    // emulated link. `on_reply` runs at most once, on the Env (a refusal possibly before Call
    // returns); never when the request or its response is lost on the way (the caller's timeout
    // ends it). The request's id is the mode's to use on the wire.
    virtual void Call(const std::string& from, const std::string& node, proto::Request request,
                      OnReply on_reply) = 0;
    // The link a -> b is now `spec` (cut when partitioned).
    virtual void SetLink(const Pair& p, const net::LinkSpec& spec) = 0;
    // Kills the node as SIGKILL would; starts it again on its data.
    virtual void Crash(const std::string& node) = 0;
    virtual core::Status Restart(const std::string& node) = 0;
    // The set-up is done and the workloads start now (a real-time mode starts measuring how its
    // processes keep up).
    virtual void RunStarts() {}
    // Calls `ready` once, on the Env, when this process's callers can reach every node their
    // workloads call (a real-time mode: their sockets' connections have finished their
    // handshakes), or with why not. Default: at once (a simulation has no connections).
    virtual void AwaitCallers(std::function<void(core::Status)> ready) {
      ready(core::Status::Ok());
    }
    // Whether the callers of client node `client` run in another process (a cluster run's client
    // host): this driver does not run them; the mode starts them (StartElsewhere), and the run
    // waits for them to end before its replica check.
    virtual bool Elsewhere(const std::string& /*client*/) const { return false; }
    // How long before the run's start the callers elsewhere must be told of it.
    virtual core::Duration ElsewhereLead() const { return core::Duration(0); }
    // The run starts at `t0`: the mode starts the callers elsewhere for then and calls `ended`
    // once, on the Env, when they all ended (or cannot be waited for longer: the mode records
    // why as an error event).
    virtual void StartElsewhere(core::TimePoint /*t0*/, std::function<void()> ended) { ended(); }
  };

  // Where a run is. Each phase follows the one before; a failed set-up ends the run at once.
  enum class Phase { kIdle, kSettingUp, kRunning, kChecking, kFinished };

  // `links`: the link of every pair that talks, as the run starts (testbed::LinkTable). Timeline
  // changes to other pairs change nothing. `deploy`: the spec deployed for each entry of
  // s.functions (the simulation's stand-ins for process functions); empty: as `s` declares them.
  Driver(const Scenario& s, core::Env& env, Mode& mode, std::map<Pair, net::LinkSpec> links,
         std::vector<proto::FunctionSpec> deploy = {});

  // Starts the run now, with its nodes up: the set-up, then the workloads and the timeline (their
  // start is the run's start), then, once they are done, the replica check. Whoever runs the Env
  // runs it until phase() is kFinished (or gives up: an interrupted run).
  void Run();
  // Runs only the callers (those not Elsewhere) and the timeline, from `t0` (now or later) on,
  // without a set-up, callers elsewhere or a replica check: what a cluster run's client host
  // does for the driver that set the run up. Its phase is kFinished once they are done.
  void RunCallers(core::TimePoint t0);
  // The callers send no more requests; those in flight end as they would.
  void StopCallers();
  Phase phase() const { return phase_; }
  // Why the set-up failed (the run then finished without workloads); OK otherwise.
  const core::Status& failure() const { return failure_; }

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
  // What the replica check found: every keygroup as of its last reading (empty before the
  // first reading ended).
  const std::vector<KeygroupCheck>& checks() const { return checks_; }
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
    core::TimePoint due;  // when its caller's schedule had it sent
    int64_t request_bytes;
  };
  // A caller draws its arrivals and its bodies from streams of its own (core/random.h), so that
  // one seed gives every caller the same schedule and bodies in every mode, whatever order the
  // callers' sends interleave in (which the emulation's timers may change).
  struct Caller {
    int64_t sent = 0;
    bool done = false;
    core::TimePoint next_send{};  // when the next request is due (closed loop: after the think)
    core::StreamRng arrivals, bodies;
  };
  struct WorkloadRun {
    std::vector<Caller> callers;
    core::TimePoint end = core::TimePoint::max();  // no request starts at or after it
    core::Duration timeout{};
    // The workload's requests by deadline (one timeout for all: sending order), answered ones
    // included until the timer finds them; one timer while it is not empty.
    std::deque<std::pair<core::TimePoint, uint64_t>> deadlines;
  };
  // A request of the driver's own (set-up), and what it is for errors.
  struct SetUpCall {
    std::string node;
    proto::Request request;
    std::string what;
  };
  struct Batch;
  struct Reading;

  // The set-up, in steps: the keygroups; a second later (the catalog reaching the nodes), every
  // (node, keygroup) a function needs, asked every 100 ms until all know theirs; the functions.
  void CreateKeygroups();
  void AwaitKeygroups(core::TimePoint deadline);
  void DeployFunctions();
  void SetUpFailed(core::Status why);
  // Sends every call at once; `then` runs with the first call's error, in order, at the end of
  // the round in which the last answer came, or when 30 s passed without all answers.
  void CallAll(std::vector<SetUpCall> calls, std::function<void(core::Status)> then);
  static core::Status Outcome(const Batch& batch);

  // The workloads and the timeline (Start: with the callers elsewhere, StartRun: without); when
  // they are done (Done), the replica check.
  void Start();
  void StartRun();
  // How long from now until `t` (never less than 0).
  core::Duration Until(core::TimePoint t) const;
  bool Done() const;
  void CheckDone();
  void StartWorkload(size_t w);
  core::Duration OpenLoopGap(size_t w, Caller& caller, bool first);
  void Send(size_t w, int c);
  // The answer to request `id` reached its client (one no longer in flight, after its timeout,
  // is ignored).
  void Answer(uint64_t id, const proto::Response& response);
  // Request `id` was refused at once (its node is down): it ends as UNAVAILABLE with `why`.
  void Refused(uint64_t id, const std::string& why);
  // Ends the requests of workload `w` past their deadline as TIMEOUT; arms the timer for the next.
  void ExpireRequests(size_t w);
  // `body`: an OK response's, whose digest the record keeps when the workload's staleness at the
  // client needs it (RequestRecord::response_digest); nullptr otherwise.
  void Finish(const InFlightRequest& f, const std::string& status, const std::string& error,
              int64_t response_bytes, const std::string* body);
  void Apply(const TimelineEvent& e);
  void ApplyLink(const Pair& p) { mode_.SetLink(p, Current(p)); }
  int64_t Ns(core::TimePoint t) const { return (t - t0_).count(); }

  // The replica check, in rounds: every replica of the keygroups that did not agree yet is read
  // at once, page after page; 200 ms after a round that found some apart, the next, until 10 s
  // passed.
  void CheckReplicas();
  void ReadReplicas();
  // Asks for the next page of replica `i`; a replica that does not answer within 5 s fails.
  void NextPage(const std::shared_ptr<Reading>& reading, size_t i);
  void ReplicaRead(const std::shared_ptr<Reading>& reading);
  void EndReading(const Reading& reading);

  const Scenario& s_;
  core::Env& env_;
  Mode& mode_;
  std::vector<proto::FunctionSpec> deploy_;  // empty: s_.functions' specs
  Phase phase_ = Phase::kIdle;
  core::Status failure_;
  std::map<Pair, net::LinkSpec> links_;  // as they are now (timeline link changes included)
  std::set<Pair> partitioned_;
  std::vector<WorkloadRun> runs_;
  // By workload: whether its answers are digested (a reader with stale_against, or its writer).
  std::vector<bool> digested_;
  std::unordered_map<uint64_t, InFlightRequest> in_flight_;
  std::vector<RequestRecord> records_;
  std::vector<EventRecord> events_;
  std::vector<double> recent_ms_;
  bool keep_recent_ = false;
  core::TimePoint t0_{};
  uint64_t next_request_ = 1;
  int64_t active_callers_ = 0;
  int64_t pending_events_ = 0;
  bool waiting_elsewhere_ = false;  // for the callers elsewhere to end
  bool callers_only_ = false;       // RunCallers: no replica check
  int64_t errors_ = 0;
  std::vector<KeygroupCheck> checks_;
  std::vector<size_t> unconverged_;  // keygroups whose replicas did not agree yet
  core::TimePoint check_deadline_{};
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

// Writes what a run recorded into `db`: its workloads, the run, the links, the requests, the
// events and the replica checks.
core::Status WriteResults(ResultsDb& db, const Scenario& s, const RunInfo& info, bool interrupted,
                          const std::map<Driver::Pair, net::LinkSpec>& links,
                          const std::vector<RequestRecord>& requests,
                          const std::vector<EventRecord>& events,
                          const std::vector<KeygroupCheck>& checks);

}  // namespace enoki::testbed
