// The peer table: the nodes this node may talk to (the members, as node/membership.h adds and
// removes them), whether each is live and how far away it is. Every peer is pinged each ping
// interval, with the digest of this node's member list; the pongs give a smoothed round-trip
// time. Forwarding and joining ask it for the nearest replicas of a keygroup.
#pragma once

#include <functional>
#include <list>
#include <map>
#include <string>
#include <vector>

#include "node/core.h"

namespace enoki::node {

class PeerTable {
 public:
  // Without peers: Membership adds them.
  explicit PeerTable(Core& core);

  struct Peer {
    core::TimePoint last_heard{};  // when a message from it last arrived (epoch: never)
    double rtt_ms = -1;            // smoothed round-trip time (-1: none measured yet)
  };

  // Starts pinging.
  void Start();
  // A member to ping from now on (this node's own id is ignored), or one to forget.
  void Add(const std::string& peer);
  void Remove(const std::string& peer) { peers_.erase(peer); }
  // What the pings carry from now on: the digest of this node's member list.
  void SetDigest(uint64_t digest);
  bool Contains(const std::string& peer) const { return peers_.contains(peer); }
  // The peer, or nullptr for a node that is not a member.
  Peer* Find(const std::string& peer) {
    auto it = peers_.find(peer);
    return it == peers_.end() ? nullptr : &it->second;
  }
  core::TimePoint LastHeard(const std::string& peer) const { return peers_.at(peer).last_heard; }
  // Whether `peer` was heard from within the liveness timeout (4 ping intervals and one retry
  // interval) before `now`.
  bool IsLive(const Peer& peer, core::TimePoint now) const;
  // Every peer (member but this node), by id.
  const std::map<std::string, Peer>& peers() const { return peers_; }
  // Measures the round trips to `peers` (members, each once) now: `probes` pings to each, one
  // every 10 ms; calls `done` with the round trips (ms) of every pong of a ping sent since (a
  // regular ping's too), once each peer has answered `probes` of them or a second after the last
  // probe. Several measurements may run at once.
  using RttSamples = std::map<std::string, std::vector<double>>;
  void Measure(const std::vector<std::string>& peers, int probes,
               std::function<void(RttSamples)> done);
  void OnPing(const std::string& from, const proto::Ping& ping);
  void OnPong(const std::string& from, Peer& peer, const proto::Pong& pong, core::TimePoint now);
  // Replicas of `meta` other than this node that are peers, nearest first: live ones
  // (heard from lately) by round-trip time, then the others.
  std::vector<std::string> NearestReplicas(const proto::KeygroupMeta& meta) const;
  // Of `ids`, those that are peers, in the same order.
  std::vector<std::string> Nearest(const std::vector<std::string>& ids) const;

 private:
  // A measurement of round trips under way.
  struct Measurement {
    uint64_t id = 0;
    core::TimePoint since;  // pongs of pings sent from then on count
    int probes = 0;
    RttSamples samples;  // a (possibly empty) list for every peer measured
    std::function<void(RttSamples)> done;
  };

  void OnPingTick();
  void SendPing(const std::string& peer, core::TimePoint now);
  // Ends measurement `id` (calls its `done`) if it is still under way.
  void Finish(uint64_t id);

  Core& core_;
  std::map<std::string, Peer> peers_;
  std::list<Measurement> measurements_;
  uint64_t next_measurement_ = 1;
  uint64_t digest_ = 0;
};

}  // namespace enoki::node
