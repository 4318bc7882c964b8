// The topology a scenario implies: which nodes talk to which (peers), and the one-way link of
// every pair that talks.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "core/status.h"
#include "net/link_model.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

// The nodes each cloud and edge node talks to, its peers: the other replicas of the keygroups it
// holds, the replicas of the keygroups its functions use, the nodes its functions' `at.<callee>`
// parameters name, and every node that has it as a peer by these rules. A node talks to no other
// (pings, replication and the catalog reach its peers only), so a large topology costs each node
// its neighbourhood, not the whole world.
std::map<std::string, std::set<std::string>> Peers(const Scenario& scenario);

// The most pairs of nodes (one way) a scenario's nodes may talk in: the link table holds one entry
// per pair, and every node keeps one connection per peer (about 150 MB of tables at this limit).
// A keygroup replicated on R nodes makes R(R-1) pairs on its own: 1,000 replicas are within it.
inline constexpr size_t kMaxTalkingPairs = 1000000;

// How many pairs of nodes (one way) talk, as Peers and LinkTable have them; nullopt as soon as
// there are more than `limit`, so that a scenario far beyond it costs no more than the limit.
std::optional<size_t> CountTalkingPairs(const Scenario& scenario, size_t limit);

// The one-way link of every pair of nodes that talk (peers, and each workload's client and node,
// both ways): the declared link; else the default for their tiers; else the path of least delay
// through declared and default links (never through a client node), whose delays add, jitters add
// as independent deviations (in quadrature), losses compound and rate is the smallest. An error
// names a pair with no path.
core::Result<std::map<std::pair<std::string, std::string>, net::LinkSpec>> LinkTable(
    const Scenario& scenario);

}  // namespace enoki::testbed
