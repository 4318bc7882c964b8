// The real network under a cluster run: round trips, and the links shaped on top.
#include "testbed/cluster_network.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include <zmq.hpp>

#include "adapters/client.h"

namespace enoki::testbed {
namespace {

using core::Status;

// How long a node may take to answer a measurement or a link change.
constexpr std::chrono::milliseconds kAnswerTimeout(10000);
constexpr auto kProbeGap = std::chrono::milliseconds(10);

std::string Fixed(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", ms);
  return text;
}

// The round trips of node or client host `from` (`what` says which) to `peers`, as it measures
// them (a node: its pings; a client host: timed status requests).
Status MeasureFrom(zmq::context_t& context, const ClusterFile& cluster, const std::string& what,
                   const std::string& from, const std::vector<std::string>& peers, int probes,
                   std::map<LinkPair, RoundTrip>& out) {
  // A node pings its peers at once, within a second of its last ping; a client host measures one
  // node after the other, each probe 10 ms after the last answer.
  auto timeout = what == "node" ? kAnswerTimeout
                                : kAnswerTimeout + static_cast<int>(peers.size()) * probes *
                                                       (kProbeGap + std::chrono::seconds(1));
  adapters::Client client = cluster.Connect(context, from, timeout);
  proto::Request r;
  for (const auto& p : peers) r.mutable_measure_rtt()->add_peers(p);
  r.mutable_measure_rtt()->set_probes(static_cast<uint32_t>(probes));
  auto answer = client.Call(std::move(r));
  if (!answer.ok()) {
    return Status(
        answer.status().code(),
        cluster.file + ": " + what + " " + from + " at " + cluster.EndpointOf(from) +
            ": cannot measure its round trips to the nodes: " + answer.status().message());
  }
  if (answer->rtts().peers_size() != static_cast<int>(peers.size())) {
    return Status::Internal(what + " " + from + " answered " +
                            std::to_string(answer->rtts().peers_size()) + " round trips for " +
                            std::to_string(peers.size()) + " peers asked");
  }
  for (const auto& rtt : answer->rtts().peers()) {
    if (rtt.answered() == 0) {
      return Status::Unavailable(what + " " + from + " had no answer from peer " + rtt.node() +
                                 " to " + std::to_string(probes) +
                                 " pings: is it up, and does it have " + from +
                                 " as a peer (enoki status on both)?");
    }
    out[{from, rtt.node()}] = FromPeerRtt(rtt);
  }
  return Status::Ok();
}

}  // namespace

proto::PeerRtt ToPeerRtt(const std::string& node, const RoundTrip& rtt) {
  proto::PeerRtt p;
  p.set_node(node);
  p.set_answered(static_cast<uint32_t>(rtt.answered));
  p.set_min_ms(rtt.min_ms);
  p.set_median_ms(rtt.median_ms);
  return p;
}

RoundTrip FromPeerRtt(const proto::PeerRtt& rtt) {
  return {rtt.min_ms(), rtt.median_ms(), static_cast<int>(rtt.answered())};
}

core::Result<RoundTrip> MeasureFromHere(zmq::context_t& context, const ClusterFile& cluster,
                                        const std::string& node, int probes) {
  adapters::Client client = cluster.Connect(context, node, kAnswerTimeout);
  std::vector<double> rtts;
  for (int i = 0; i < probes; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto status = client.NodeStatus();
    if (!status.ok()) {
      return Status(status.status().code(), cluster.file + ": node " + node + " at " +
                                                cluster.nodes.at(node).endpoint + ": " +
                                                status.status().message());
    }
    rtts.push_back(core::ToMillis(std::chrono::steady_clock::now() - start));
    std::this_thread::sleep_for(kProbeGap);
  }
  std::sort(rtts.begin(), rtts.end());
  return RoundTrip{rtts.front(), rtts[rtts.size() / 2], probes};
}

core::Result<std::map<LinkPair, RoundTrip>> MeasureNetwork(
    const Scenario& s, const ClusterFile& cluster, const std::map<LinkPair, net::LinkSpec>& links,
    int probes) {
  std::map<LinkPair, net::LinkSpec> unshaped;
  for (const auto& [p, spec] : links) unshaped[p] = {};
  ENOKI_RETURN_IF_ERROR(ShapeNodeLinks(s, cluster, unshaped));
  std::map<std::string, std::vector<std::string>> node_peers;  // measured by the node
  std::map<std::string, std::set<std::string>> host_nodes;     // by a client host
  std::set<std::string> from_here;                             // a client's node
  for (const auto& [p, spec] : links) {
    bool a = IsClient(s, p.first), b = IsClient(s, p.second);
    if (!a && !b) {
      node_peers[p.first].push_back(p.second);
    } else if (!a || !b) {
      const std::string& node = a ? p.second : p.first;
      const std::string* host = cluster.HostOf(a ? p.first : p.second);
      if (host == nullptr) {
        from_here.insert(node);
      } else {
        host_nodes[*host].insert(node);
      }
    }
  }
  zmq::context_t context(1);
  std::map<LinkPair, RoundTrip> out;
  for (const auto& [node, peers] : node_peers) {
    ENOKI_RETURN_IF_ERROR(MeasureFrom(context, cluster, "node", node, peers, probes, out));
  }
  std::map<LinkPair, RoundTrip> elsewhere;  // (client host, node)
  for (const auto& [host, nodes] : host_nodes) {
    ENOKI_RETURN_IF_ERROR(MeasureFrom(context, cluster, "client host", host,
                                      {nodes.begin(), nodes.end()}, probes, elsewhere));
  }
  std::map<std::string, RoundTrip> here;
  for (const auto& node : from_here) {
    auto rtt = MeasureFromHere(context, cluster, node, probes);
    if (!rtt.ok()) return rtt.status();
    here[node] = *rtt;
  }
  for (const auto& [p, spec] : links) {
    bool a = IsClient(s, p.first);
    if (a == IsClient(s, p.second)) continue;
    const std::string& node = a ? p.second : p.first;
    const std::string* host = cluster.HostOf(a ? p.first : p.second);
    out[p] = host == nullptr ? here.at(node) : elsewhere.at({*host, node});
  }
  return out;
}

net::LinkSpec OnTopOf(const net::LinkSpec& spec, const RoundTrip& rtt) {
  net::LinkSpec on = spec;
  auto one_way = std::chrono::duration_cast<core::Duration>(
      std::chrono::duration<double, std::milli>(rtt.min_ms / 2));
  on.delay = spec.delay > one_way ? spec.delay - one_way : core::Duration(0);
  return on;
}

std::vector<std::string> SlowerThanScenario(const std::map<LinkPair, net::LinkSpec>& links,
                                            const std::map<LinkPair, RoundTrip>& rtts) {
  std::vector<std::string> lines;
  for (const auto& [p, spec] : links) {
    auto rtt = rtts.find(p);
    if (rtt == rtts.end()) continue;
    double one_way = rtt->second.min_ms / 2;
    if (one_way <= core::ToMillis(spec.delay)) continue;
    lines.push_back("link " + p.first + " -> " + p.second + ": the network's one-way time (" +
                    Fixed(one_way) + " ms, half its smallest round trip) is more than the " +
                    "scenario's delay of " + Fixed(core::ToMillis(spec.delay)) +
                    " ms: the link is " + Fixed(one_way - core::ToMillis(spec.delay)) +
                    " ms slower than the scenario says");
  }
  return lines;
}

std::vector<NetworkRecord> NetworkRecords(const std::map<LinkPair, net::LinkSpec>& links,
                                          const std::map<LinkPair, RoundTrip>& rtts) {
  std::vector<NetworkRecord> records;
  for (const auto& [p, spec] : links) {
    auto rtt = rtts.find(p);
    if (rtt == rtts.end()) continue;
    records.push_back({p.first, p.second, rtt->second.min_ms, rtt->second.median_ms,
                       rtt->second.answered, core::ToMillis(OnTopOf(spec, rtt->second).delay)});
  }
  return records;
}

Status ShapeNodeLinks(const Scenario& s, const ClusterFile& cluster,
                      const std::map<LinkPair, net::LinkSpec>& links) {
  zmq::context_t context(1);
  std::map<std::string, std::vector<std::pair<std::string, net::LinkSpec>>> by_node;
  for (const auto& [p, spec] : links) {
    if (!IsClient(s, p.first) && !IsClient(s, p.second))
      by_node[p.first].emplace_back(p.second, spec);
  }
  // Every node is asked, also after one failed (a node that is down must not leave the others
  // as they were); the errors, one a line.
  Status first;
  std::string problems;
  for (const auto& [node, to] : by_node) {
    adapters::Client client = cluster.Connect(context, node, kAnswerTimeout);
    for (const auto& [peer, spec] : to) {
      Status st = client.SetLink(peer, spec.ToString(), true);
      if (st.ok()) continue;
      if (first.ok()) first = st;
      problems += "\n  " + cluster.file + ": node " + node + " at " +
                  cluster.nodes.at(node).endpoint + ": cannot shape its link to " + peer + ": " +
                  st.message();
      if (st.code() == core::Code::kDeadlineExceeded) break;  // its other links would wait too
    }
  }
  if (first.ok()) return first;
  return Status(first.code(), "cannot shape the links:" + problems);
}

}  // namespace enoki::testbed
