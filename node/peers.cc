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

void PeerTable::SendPing(const std::string& peer, core::TimePoint now) {
  proto::PeerMessage msg;
  // The nonce is the time it was sent: the pong gives the round trip.
  msg.mutable_ping()->set_nonce(static_cast<uint64_t>(now.time_since_epoch().count()));
  msg.mutable_ping()->set_members_digest(digest_);
  // Pings and pongs wait for no commit: they measure the link, and say the node is alive.
  core_.Send(peer, std::move(msg), core_.durable_seq());
}

void PeerTable::OnPingTick() {
  auto now = core_.env().Now();
  for (const auto& [peer_id, peer] : peers_) SendPing(peer_id, now);
  core_.After(core_.options().ping_interval, [this] { OnPingTick(); });
}

void PeerTable::Measure(const std::vector<std::string>& peers, int probes,
                        std::function<void(RttSamples)> done) {
  constexpr auto kProbeInterval = std::chrono::milliseconds(10);
  constexpr auto kLastPongWait = std::chrono::seconds(1);
  uint64_t id = next_measurement_++;
  Measurement m{id, core_.env().Now(), probes, {}, std::move(done)};
  for (const auto& p : peers) m.samples[p];
  measurements_.push_back(std::move(m));
  for (int k = 0; k < probes; ++k) {
    core_.After(k * kProbeInterval, [this, peers] {
      auto now = core_.env().Now();
      for (const auto& p : peers) {
        if (peers_.contains(p)) SendPing(p, now);
      }
    });
  }
  core_.After((probes - 1) * kProbeInterval + kLastPongWait, [this, id] { Finish(id); });
}

void PeerTable::Finish(uint64_t id) {
  // A measurement that finished early is gone when its last timer fires.
  for (auto it = measurements_.begin(); it != measurements_.end(); ++it) {
    if (it->id != id) continue;
    auto done = std::move(it->done);
    auto samples = std::move(it->samples);
    measurements_.erase(it);
    done(std::move(samples));
    return;
  }
}

void PeerTable::OnPing(const std::string& from, const proto::Ping& ping) {
  proto::PeerMessage pong;
  pong.mutable_pong()->set_nonce(ping.nonce());
  core_.Send(from, std::move(pong), core_.durable_seq());
}

void PeerTable::SetDigest(uint64_t digest) { digest_ = digest; }

void PeerTable::OnPong(const std::string& from, Peer& peer, const proto::Pong& pong,
                       core::TimePoint now) {
  // The nonce is a time this node sent a ping at: one later than now is forged or corrupt (and
  // one of 2^63 or more would overflow the subtraction).
  if (pong.nonce() > static_cast<uint64_t>(now.time_since_epoch().count())) return;
  auto sent = core::TimePoint(core::Duration(static_cast<int64_t>(pong.nonce())));
  double rtt = core::ToMillis(now - sent);
  peer.rtt_ms = peer.rtt_ms < 0 ? rtt : 0.8 * peer.rtt_ms + 0.2 * rtt;
  std::vector<uint64_t> complete;
  for (auto& m : measurements_) {
    auto samples = m.samples.find(from);
    if (samples == m.samples.end() || sent < m.since) continue;
    samples->second.push_back(rtt);
    bool all = true;
    for (const auto& [_, s] : m.samples) all &= s.size() >= size_t(m.probes);
    if (all) complete.push_back(m.id);
  }
  for (uint64_t id : complete) Finish(id);
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
