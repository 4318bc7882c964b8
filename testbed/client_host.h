// A cluster run's client hosts (docs/real-machines.md, "Callers on other hosts"): processes on
// other hosts, `enoki run SCENARIO --cluster FILE --client NAME` started on each, that run the
// callers of the client nodes the cluster file gives them, so that the callers are not all in the
// driver's process, and not all behind its host's network.
//
// The protocol, over the host's endpoint (requests addressed to the host's name, CURVE with the
// run's identity as the host's key pair): before the run, the driver estimates the host's clock
// (ClockRequest, as for a node) and has it measure its round trips to the nodes its callers call
// (MeasureRttRequest, timed status requests). At the run's start, the driver tells it when the
// run starts on its clock (StartCallersRequest, a lead ahead), with those round trips, on top of
// which the host shapes its callers' links as the driver does its own; the host runs the
// callers and the timeline's changes to their links from then on (Driver::RunCallers), with the
// same seeds as they would have in the driver. The driver asks every 250 ms whether they ended
// (CallsRequest), and after the run fetches their requests and the host's clock again, and moves
// the requests' times to its own clock (testbed/remote_traces.h: NodeClock). A request's latency
// is measured on one clock, the host's, so it is exact; its start and end on the run's time line
// hold within the host's clock bound (`clocks`, role `client host`).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/proto/enoki.pb.h"
#include "testbed/cluster.h"
#include "testbed/cluster_network.h"
#include "testbed/remote_traces.h"
#include "testbed/results.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

// FNV-1a of the scenario file's text: the driver and its client hosts must run the same file.
uint64_t ScenarioDigest(const Scenario& s);

struct ClientHostOptions {
  bool progress = false;  // a progress line on stderr every second
  double time_scale = 1;  // what Shorten returned: the driver's must be the same
  // How long to wait for the driver: to start the callers, and to fetch their requests once they
  // ended.
  std::chrono::seconds wait{600};
  core::Duration clock_offset{0};  // tests: this host's clock reads that far ahead
};

struct ClientHostResult {
  int64_t requests = 0;  // made, and handed to the driver
  int64_t errors = 0;    // of which not OK
  bool stopped = false;  // by the driver (interrupted, or its set-up failed)
  bool interrupted = false;
};

// Client host `name` of `cluster` (which must have it): listens at its endpoint, serves the
// driver's requests, runs the callers when the driver starts them, and returns once the driver
// fetched their requests. Fails when the endpoint cannot be bound, or when the driver does not
// start the callers, or does not fetch their requests, within `options.wait`. `stop_requested`
// (polled every 50 ms) ends it early.
core::Result<ClientHostResult> RunClientHost(const Scenario& s, const ClusterFile& cluster,
                                             const std::string& name,
                                             const ClientHostOptions& options,
                                             const std::function<bool()>& stop_requested);

// The driver's side of its client hosts.
class ClientHosts {
 public:
  // Before the run: every client host's clock, and that it runs `s` (the same file) with
  // `time_scale` and the client nodes the cluster file gives it. Fails naming each host that does
  // not answer or runs something else, one a line.
  static core::Result<ClientHosts> Begin(const ClusterFile& cluster, const Scenario& s,
                                         double time_scale);

  // How long before the run's start the hosts must be told of it: 0.25 s and twice the largest
  // round trip to one.
  core::Duration Lead() const;
  // The request that starts host `name`'s callers for a run that starts at `t0_ns` on the
  // driver's clock, with the round trips `rtts` (the host's to the nodes, as MeasureNetwork
  // measured them), and remembers when that is on the host's clock.
  proto::Request StartRequest(const std::string& name, int64_t t0_ns,
                              const std::map<LinkPair, RoundTrip>& rtts);
  // Host `name` answered its start request well: its callers run.
  void Started(const std::string& name) { hosts_.at(name).started = true; }
  // Host `name` stopped answering during the run (an error event): Finish does not ask it again.
  void GiveUp(const std::string& name) { hosts_.at(name).gone = true; }

  // After the run: every started host's clock again, and its requests (those that ended, when
  // the run was `interrupted`: its callers are stopped first), their times moved to the driver's
  // clock since `t0_ns`, appended to `requests`; the clock estimates to `clocks`. Every host is
  // released (it ends). A host that fails is named in the error (one a line), with what of it was
  // taken; the others' are taken.
  core::Status Finish(int64_t t0_ns, bool interrupted, std::vector<RequestRecord>& requests,
                      std::vector<ClockRecord>& clocks);
  // Stops and releases every host Finish did not (a run that failed before it), as best it can: a
  // host that does not hear it ends after its --wait.
  void Release();

 private:
  ClientHosts(const ClusterFile& cluster, const Scenario& s, double time_scale)
      : cluster_(&cluster), s_(&s), time_scale_(time_scale) {}

  struct Host {
    ClockEstimate before;
    int64_t start_ns = 0;  // the run's start on its clock
    bool started = false;
    bool released = false;
    bool gone = false;  // given up
  };
  const ClusterFile* cluster_;
  const Scenario* s_;
  double time_scale_;
  std::map<std::string, Host> hosts_;
};

}  // namespace enoki::testbed
