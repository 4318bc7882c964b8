// The nodes' traces over their API, on the driver's clock (the cluster mode, issue 16). A node on
// another host stamps its trace with its own monotonic clock, which shares no origin with the
// driver's, so each node's offset is estimated NTP-style: many ClockRequests, each bracketed by
// the driver's clock (t0 sent, t1 the node's clock when it served it, t3 answer received). As the
// node read t1 at some moment between t0 and t3, the offset lies in [t1 - t3, t1 - t0] (width:
// the round trip); the exchanges with the smallest round trips are kept, and the estimate is the
// middle of where their ranges overlap, its error bound half of that overlap's width, plus what
// the clocks' rates may differ by over the exchanges (500 ppm, the most the kernel slews). Taken
// before the run and after it; a record's time is moved by the offset interpolated between the
// two, so a steady drift is followed. The bound written with the results is the larger of the two
// estimates', and assumes the drift was steady in between (the clocks table shows how far the
// offsets moved).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "adapters/client.h"
#include "core/status.h"
#include "testbed/cluster.h"
#include "testbed/results.h"

namespace enoki::testbed {

// Estimates the offset of the trace clock of the node `client` reaches from `exchanges` clock
// requests, one after the other (fewer when they take longer than `budget` in all, but at least
// 10), keeping the tenth with the smallest round trips. Two lost answers are let go; the error is
// the node's (e.g. PERMISSION_DENIED without the `control` role), or no answer to the first
// exchange or to a third one in the client's timeout.
core::Result<ClockEstimate> EstimateClock(
    adapters::Client& client, int exchanges = 200,
    std::chrono::nanoseconds budget = std::chrono::seconds(2));

// A node's clock over a run: estimated before and after it.
struct NodeClock {
  ClockEstimate before, after;
  // A time of the node's trace clock on the driver's: less the offset, interpolated between the
  // two estimates by the time it was (extrapolated outside them).
  int64_t ToDriver(int64_t node_ns) const;
  // The bound of ToDriver's error: the larger of the two estimates' (a steady drift assumed).
  int64_t error_ns() const;
};

// The traces of a cluster run's nodes, from before the run to after it.
class RemoteTraces {
 public:
  // Before the run: estimates every node's clock and asks where its trace ends (the run's
  // records come after). Fails, naming every node that cannot take part and why (one a line: it
  // keeps no trace, its access file does not give this run's identity `control`, it does not
  // answer), before anything ran.
  static core::Result<RemoteTraces> Begin(const ClusterFile& cluster);

  // After the run: estimates every node's clock again, fetches its trace from where it ended at
  // Begin, moves the records' times to the driver's clock (NodeClock) and writes them to `db`'s
  // `writes` and `kv_ops` relative to `t0_ns` (the run's start, on the driver's clock), and the
  // estimates to `clocks`. A node that fails is left out and named in the error (one a line);
  // the others are written.
  core::Status Finish(ResultsDb& db, int64_t t0_ns);

 private:
  explicit RemoteTraces(const ClusterFile& cluster) : cluster_(&cluster) {}

  const ClusterFile* cluster_;
  struct Node {
    ClockEstimate before;
    uint64_t cursor = 0;  // where the trace ended before the run
  };
  std::map<std::string, Node> nodes_;
};

}  // namespace enoki::testbed
