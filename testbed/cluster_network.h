// The real network under a cluster run (`enoki run --cluster`): the round trip of every pair of
// the scenario that talks, measured before the run with no shaping, and the links the shapers add
// on top of it, so that a link's one-way delay is the scenario's (docs/real-machines.md, "Links on
// a real network").
//
// A pair of nodes is measured by its first node (MeasureRttRequest: pings to the peer); a
// client's pairs from where its callers run (timed status requests to the node): this process,
// or its client host (MeasureRttRequest to the host, testbed/client_host.h).
// The probes are spaced as a run's messages come (10 ms apart), so that each meets the hosts as a
// run's request does: a host that was idle takes tens to hundreds of microseconds to wake, and
// that is part of what a message meets. The one-way time of a link is taken as half the smallest
// round trip: what the network and the hosts take at best, so that the shaping takes off no more
// than an idle host's message meets; the rest of what they take (their spread, the hosts'
// busier moments) stays in the results. A busy run's hosts stay awake, and its latencies can
// fall that much under the scenario's floor (bench/README.md: 0.07 to 0.19 ms at 1,000 to 32,000
// requests/s on a 2-core VM).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "core/status.h"
#include "net/link_model.h"
#include "net/proto/enoki.pb.h"
#include "testbed/cluster.h"
#include "testbed/results.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

using LinkPair = std::pair<std::string, std::string>;

// The round trips measured over one pair.
struct RoundTrip {
  double min_ms = 0;
  double median_ms = 0;
  int answered = 0;  // round trips measured
};

// Every node stops shaping its links to the others of `links` (their shapers' links become
// empty, over the network), then the round trip of every pair of `links` is measured, `probes`
// times (1 to 100). An error names the node that could not be reached or measured, or the pair
// with no answer. Uses the nodes' `control` role.
core::Result<std::map<LinkPair, RoundTrip>> MeasureNetwork(
    const Scenario& s, const ClusterFile& cluster, const std::map<LinkPair, net::LinkSpec>& links,
    int probes);

// A round trip to `node` as the protocol carries it (RttList, StartCallersRequest), and back.
proto::PeerRtt ToPeerRtt(const std::string& node, const RoundTrip& rtt);
RoundTrip FromPeerRtt(const proto::PeerRtt& rtt);

// The round trip from this process to node `node` of `cluster`, from `probes` timed status
// requests 10 ms apart (a client's links: from the driver, or from a client host).
core::Result<RoundTrip> MeasureFromHere(zmq::context_t& context, const ClusterFile& cluster,
                                        const std::string& node, int probes);

// What the shaping adds for link a -> b to be `spec` over a network whose round trip is `rtt`:
// `spec` with its delay less half the smallest round trip, never below zero; jitter, loss, rate
// and cut as they are.
net::LinkSpec OnTopOf(const net::LinkSpec& spec, const RoundTrip& rtt);

// One line for every link of `links` whose network is slower than its delay (the network's
// one-way time exceeds it, so the link is that much slower than the scenario says).
std::vector<std::string> SlowerThanScenario(const std::map<LinkPair, net::LinkSpec>& links,
                                            const std::map<LinkPair, RoundTrip>& rtts);

// The `network` rows of the results: each measured pair and the delay added on top.
std::vector<NetworkRecord> NetworkRecords(const std::map<LinkPair, net::LinkSpec>& links,
                                          const std::map<LinkPair, RoundTrip>& rtts);

// Asks every node of `links` that is not a client to shape its link to the other as `links`
// says, over the network, and waits for every answer. Empty specs stop the shaping. Every node
// is asked, also after one failed; the error names each node and link that failed.
core::Status ShapeNodeLinks(const Scenario& s, const ClusterFile& cluster,
                            const std::map<LinkPair, net::LinkSpec>& links);

}  // namespace enoki::testbed
