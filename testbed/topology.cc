// Peers and the link table of a scenario.
#include "testbed/topology.h"

#include <cmath>
#include <functional>
#include <queue>
#include <unordered_set>
#include <vector>

namespace enoki::testbed {

using core::Duration;
using core::Status;

namespace {

// Calls `talk(a, b)` for every pair of cloud and edge nodes that Peers makes peers (a pair may
// come more than once, and a == b too), until `talk` returns false; whether it never did.
bool VisitPeerPairs(const Scenario& s,
                    const std::function<bool(const std::string&, const std::string&)>& talk) {
  std::map<std::string, const KeygroupDecl*> keygroups;
  for (const auto& k : s.keygroups) {
    keygroups[k.name] = &k;
    for (const auto& a : k.replicas) {
      for (const auto& b : k.replicas) {
        if (!talk(a, b)) return false;
      }
    }
  }
  for (const auto& f : s.functions) {
    auto k = keygroups.find(f.spec.keygroup());
    for (const auto& at : f.nodes) {
      if (k != keygroups.end()) {
        for (const auto& r : k->second->replicas) {
          if (!talk(at, r)) return false;
        }
      }
      for (const auto& [param, value] : f.spec.params()) {
        const NodeDecl* callee = s.FindNode(value);
        if (param.starts_with("at.") && callee != nullptr && callee->tier != Tier::kClient &&
            !talk(at, value)) {
          return false;
        }
      }
    }
  }
  return true;
}

}  // namespace

std::map<std::string, std::set<std::string>> Peers(const Scenario& s) {
  std::map<std::string, std::set<std::string>> peers;
  for (const auto& n : s.nodes) {
    if (n.tier != Tier::kClient) peers[n.name];
  }
  VisitPeerPairs(s, [&](const std::string& a, const std::string& b) {
    if (a != b) {
      peers[a].insert(b);
      peers[b].insert(a);
    }
    return true;
  });
  return peers;
}

std::optional<size_t> CountTalkingPairs(const Scenario& s, size_t limit) {
  const auto& index = s.node_index;
  const uint64_t n = s.nodes.size();
  std::unordered_set<uint64_t> pairs;
  auto talk = [&](const std::string& a, const std::string& b) {
    uint64_t i = index.at(a), j = index.at(b);
    if (i == j) return true;
    pairs.insert(i * n + j);
    pairs.insert(j * n + i);
    return pairs.size() <= limit;
  };
  if (!VisitPeerPairs(s, talk)) return std::nullopt;
  for (const auto& w : s.workloads) {
    if (!talk(w.client, w.node)) return std::nullopt;
  }
  return pairs.size();
}

core::Result<std::map<std::pair<std::string, std::string>, net::LinkSpec>> LinkTable(
    const Scenario& s) {
  size_t n = s.nodes.size();
  const auto& index = s.node_index;
  // The pairs that talk, grouped by their first node.
  std::map<size_t, std::set<size_t>> wanted;
  for (const auto& [a, bs] : Peers(s)) {
    for (const auto& b : bs) wanted[index.at(a)].insert(index.at(b));
  }
  for (const auto& w : s.workloads) {
    wanted[index.at(w.client)].insert(index.at(w.node));
    wanted[index.at(w.node)].insert(index.at(w.client));
  }
  // Direct links: declared ones, else the tiers' default.
  std::vector<std::map<size_t, net::LinkSpec>> declared(n);
  for (const auto& l : s.links) {
    declared[index.at(l.a)][index.at(l.b)] = l.spec;
    declared[index.at(l.b)][index.at(l.a)] = l.spec;
  }
  std::map<Tier, std::vector<size_t>> by_tier;
  for (size_t i = 0; i < n; ++i) by_tier[s.nodes[i].tier].push_back(i);
  auto direct = [&](size_t u, size_t v) -> std::optional<net::LinkSpec> {
    if (auto d = declared[u].find(v); d != declared[u].end()) return d->second;
    auto t = s.tier_links.find(TierPair(s.nodes[u].tier, s.nodes[v].tier));
    if (u != v && t != s.tier_links.end()) return t->second;
    return std::nullopt;
  };
  std::map<std::pair<std::string, std::string>, net::LinkSpec> table;
  for (const auto& [src, dsts] : wanted) {
    std::set<size_t> left;
    for (size_t dst : dsts) {
      if (auto d = direct(src, dst)) {
        table[{s.nodes[src].name, s.nodes[dst].name}] = *d;
      } else {
        left.insert(dst);
      }
    }
    if (left.empty()) continue;
    // The path of least total delay (Dijkstra over declared and default links).
    std::vector<std::optional<net::LinkSpec>> best(n);
    std::vector<double> variance(n, 0);  // of the path's jitter, ns^2
    std::vector<int> jittery(n, 0);      // hops with jitter on the path
    std::vector<bool> done(n, false);
    using Item = std::pair<Duration, size_t>;
    std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
    best[src] = net::LinkSpec{};
    queue.push({Duration(0), src});
    auto relax = [&](size_t u, size_t v, const net::LinkSpec& hop) {
      if (done[v]) return;
      net::LinkSpec path = *best[u];
      path.delay += hop.delay;
      if (best[v] && path.delay >= best[v]->delay) return;
      // Independent jitters add as variances: uniform +-j has variance j^2/3, normal j^2.
      double j = static_cast<double>(hop.jitter.count());
      bool uniform = hop.distribution == net::LinkSpec::Jitter::kUniform;
      double var = variance[u] + (uniform ? j * j / 3 : j * j);
      int hops = jittery[u] + (hop.jitter > Duration(0) ? 1 : 0);
      if (hops == 1 && hop.jitter > Duration(0)) {  // the one jittery hop, as it is
        path.jitter = hop.jitter;
        path.distribution = hop.distribution;
      } else if (hops > 1) {  // several: near normal, with the summed variance
        path.jitter = Duration(static_cast<Duration::rep>(std::llround(std::sqrt(var))));
        path.distribution = net::LinkSpec::Jitter::kNormal;
      }
      path.loss = 1 - (1 - path.loss) * (1 - hop.loss);
      path.drop = 1 - (1 - path.drop) * (1 - hop.drop);
      path.rate_bps = path.rate_bps == 0  ? hop.rate_bps
                      : hop.rate_bps == 0 ? path.rate_bps
                                          : std::min(path.rate_bps, hop.rate_bps);
      best[v] = path;
      variance[v] = var;
      jittery[v] = hops;
      queue.push({path.delay, v});
    };
    while (!queue.empty() && !left.empty()) {
      auto [delay, u] = queue.top();
      queue.pop();
      if (done[u]) continue;
      done[u] = true;
      left.erase(u);
      // Clients are ends of paths, never hops on them.
      if (u != src && s.nodes[u].tier == Tier::kClient) continue;
      for (const auto& [v, hop] : declared[u]) relax(u, v, hop);
      for (const auto& [tiers, hop] : s.tier_links) {
        Tier u_tier = s.nodes[u].tier;
        if (tiers.first != u_tier && tiers.second != u_tier) continue;
        Tier other = tiers.first == u_tier ? tiers.second : tiers.first;
        for (size_t v : by_tier[other]) {
          if (v != u && !declared[u].contains(v)) relax(u, v, hop);
        }
      }
    }
    for (size_t dst : dsts) {
      if (direct(src, dst)) continue;
      if (!best[dst] || !done[dst]) {
        return Status::InvalidArgument(
            "no link or path between " + s.nodes[src].name + " and " + s.nodes[dst].name +
            ": declare a link, or a tier_links default for " + TierName(s.nodes[src].tier) + "-" +
            TierName(s.nodes[dst].tier));
      }
      table[{s.nodes[src].name, s.nodes[dst].name}] = *best[dst];
    }
  }
  return table;
}

}  // namespace enoki::testbed
