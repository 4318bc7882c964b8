// The peer table: liveness and round-trip times.
#include "node/peers.h"

#include <algorithm>
#include <tuple>

namespace enoki::node {

PeerTable::PeerTable(Core& core) : core_(core) {}

void PeerTable::Add(const std::string& peer) {
  if (peer != core_.id()) peers_[peer];
}

void PeerTable::Start() {
  core_.After(std::chrono::milliseconds(0), [this] { OnPingTick(); });
}

void PeerTable::OnPingTick() {
  auto now = core_.env().Now();
  for (const auto& [peer_id, peer] : peers_) {
    proto::PeerMessage msg;
    msg.mutable_ping()->set_nonce(static_cast<uint64_t>(now.time_since_epoch().count()));
    msg.mutable_ping()->set_members_digest(digest_);
    core_.Send(peer_id, std::move(msg));
  }
  core_.After(core_.options().ping_interval, [this] { OnPingTick(); });
}

void PeerTable::OnPing(const std::string& from, const proto::Ping& ping) {
  proto::PeerMessage pong;
  pong.mutable_pong()->set_nonce(ping.nonce());
  core_.Send(from, std::move(pong));
}

void PeerTable::SetDigest(uint64_t digest) { digest_ = digest; }

void PeerTable::OnPong(Peer& peer, const proto::Pong& pong, core::TimePoint now) {
  auto sent = core::TimePoint(core::Duration(static_cast<int64_t>(pong.nonce())));
  double rtt = core::ToMillis(now - sent);
  if (rtt >= 0) peer.rtt_ms = peer.rtt_ms < 0 ? rtt : 0.8 * peer.rtt_ms + 0.2 * rtt;
}

bool PeerTable::IsLive(const Peer& peer, core::TimePoint now) const {
  const NodeOptions& o = core_.options();
  return peer.last_heard != core::TimePoint{} &&
         now - peer.last_heard < 4 * o.ping_interval + o.retry_interval;
}

std::vector<std::string> PeerTable::NearestReplicas(const proto::KeygroupMeta& meta) const {
  std::vector<std::string> ids;
  for (const auto& r : meta.replicas()) ids.push_back(r.node());
  return Nearest(ids);
}

std::vector<std::string> PeerTable::Nearest(const std::vector<std::string>& ids) const {
  struct Candidate {
    bool live;
    double rtt;
    std::string id;
  };
  const NodeOptions& o = core_.options();
  std::vector<Candidate> c;
  auto now = core_.env().Now();
  for (const auto& id : ids) {
    if (id == o.id) continue;
    auto it = peers_.find(id);
    if (it == peers_.end()) continue;
    bool live = IsLive(it->second, now);
    c.push_back({live, it->second.rtt_ms < 0 ? 1e9 : it->second.rtt_ms, id});
  }
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(b.live, a.rtt, a.id) < std::tie(a.live, b.rtt, b.id);
  });
  std::vector<std::string> out;
  for (auto& x : c) out.push_back(std::move(x.id));
  return out;
}

}  // namespace enoki::node
