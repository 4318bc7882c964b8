// Replication: the outbox, its retries, and synchronous writes.
#include "node/replication.h"

#include <algorithm>

namespace enoki::node {
namespace {

// Retry rounds look at no more outbox entries than this per peer, so a long backlog costs a
// bounded amount of work per tick.
constexpr size_t kMaxScanPerRound = 8192;

}  // namespace

Replication::Replication(Core& core, const PeerTable& peers) : core_(core), peer_table_(peers) {
  core_.SetFreshSender([this] { SendFresh(); });
}

void Replication::AddPeer(const std::string& peer_id, bool owe_catalog) {
  if (peer_id == core_.id()) return;
  auto [it, added] = peers_.try_emplace(peer_id);
  if (!added) return;
  it->second.backoff = core_.options().retry_interval;
  if (owe_catalog) OweCatalog(peer_id);
}

void Replication::OweCatalog(const std::string& peer_id) {
  // Every entry, deletions too (a deletion is final).
  for (const auto& [name, kg] : core_.keygroups()) {
    MarkDirty(peer_id, name, "", Version::FromProto(kg.meta.version()), true);
  }
}

void Replication::RemovePeer(const std::string& peer_id) {
  auto it = peers_.find(peer_id);
  if (it == peers_.end()) return;
  for (const auto& [key, entry] : it->second.outbox) {
    core_.batch().EraseOutbox(peer_id, key.first, key.second);
  }
  peers_.erase(it);
  std::erase(fresh_peers_, peer_id);
  backed_off_.erase(peer_id);
  StopWaiting("", [&](const std::string& node) { return node == peer_id; });
}

void Replication::StopWaiting(const std::string& keygroup,
                              const std::function<bool(const std::string&)>& gone) {
  for (auto w = sync_writes_.begin(); w != sync_writes_.end();) {
    if (keygroup.empty() || w->second.keygroup == keygroup) {
      std::erase_if(w->second.waiting, gone);
      if (w->second.waiting.empty()) {
        core_.CancelTimer(w->second.timer);
        core_.Complete(w->second.done, std::move(w->second.response));
        w = sync_writes_.erase(w);
        continue;
      }
    }
    ++w;
  }
}

void Replication::Load(OutboxRecord&& rec) {
  auto it = peers_.find(rec.peer);
  if (it == peers_.end()) {
    // Kept on disk (a restart with the peer configured again delivers it), not retried now.
    if (core_.FirstTime(rec.peer)) {
      core_.Log(core::LogLevel::kWarn, "the outbox holds entries for '{}', which is not a member",
                rec.peer);
    }
    return;
  }
  it->second.outbox[{rec.keygroup, rec.key}] = OutboxEntry{std::move(rec.version), {}};
}

void Replication::Start() {
  core_.After(core_.options().retry_interval, [this] { OnRetryTick(); });
}

size_t Replication::OutboxSize(const std::string& peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? 0 : it->second.outbox.size();
}

size_t Replication::OutboxSize() const {
  size_t n = 0;
  for (const auto& [id, p] : peers_) n += p.outbox.size();
  return n;
}

void Replication::OnLocalWrite(const Keygroup& kg, const std::string& key, const Version& version) {
  for (const auto& r : kg.meta.replicas()) {
    if (r.node() != core_.id()) MarkDirty(r.node(), kg.meta.name(), key, version, true);
  }
}

void Replication::OweEntryToAll(const std::string& keygroup, const Version& version) {
  for (const auto& [peer, p] : peers_) MarkDirty(peer, keygroup, "", version, true);
}

void Replication::MarkDirty(const std::string& peer_id, const std::string& keygroup,
                            const std::string& key, const Version& version, bool push_now) {
  auto peer_it = peers_.find(peer_id);
  if (peer_it == peers_.end()) {
    // Never deliverable: the catalog names a node that is not (or no longer) a member.
    if (core_.FirstTime(peer_id)) {
      core_.Log(core::LogLevel::kWarn,
                "keygroup '{}' names '{}', which is not a member: it gets nothing from this "
                "node (give the node --peer {}=ENDPOINT, or let {} --join the cluster)",
                keygroup, peer_id, peer_id, peer_id);
    }
    return;
  }
  Peer& peer = peer_it->second;
  auto [it, inserted] = peer.outbox.try_emplace({keygroup, key});
  it->second.version = version;
  it->second.last_sent = {};
  core_.batch().PutOutbox(OutboxRecord{peer_id, keygroup, key, version});
  if (push_now) {
    if (peer.fresh.empty()) fresh_peers_.push_back(peer_id);
    peer.fresh.emplace_back(keygroup, key);
    core_.Fresh();
  }
}

void Replication::EraseOutbox(const std::string& peer_id,
                              std::map<ItemKey, OutboxEntry>::iterator it) {
  core_.batch().EraseOutbox(peer_id, it->first.first, it->first.second);
  peers_[peer_id].outbox.erase(it);
}

void Replication::SendFresh() {
  for (const auto& peer_id : std::exchange(fresh_peers_, {})) {
    SendEntries(peer_id, std::exchange(peers_.at(peer_id).fresh, {}));
  }
}

ReplicateBatcher::ReplicateBatcher(Core& core, std::string peer, const Keygroup& kg, bool repair)
    : core_(core), peer_(std::move(peer)), kg_(kg), repair_(repair) {}

void ReplicateBatcher::Add(const std::string& key, const StoredItem& item) {
  if (!msg_.has_replicate()) {
    auto* r = msg_.mutable_replicate();
    r->set_keygroup(kg_.meta.name());
    *r->mutable_incarnation() = kg_.meta.created();
    *r->mutable_meta_version() = kg_.meta.version();
    r->set_repair(repair_);
  }
  auto* out = msg_.mutable_replicate()->add_items();
  out->set_key(key);
  out->set_value(item.value);
  item.version.ToProto(out->mutable_version());
  out->set_deleted(item.deleted);
  bytes_ += key.size() + item.value.size() + kItemOverhead;
  if (bytes_ >= core_.batch_bytes() ||
      msg_.replicate().items_size() >= static_cast<int>(kMaxItemsPerMessage)) {
    Flush();
  }
}

void ReplicateBatcher::Flush() {
  if (!msg_.has_replicate()) return;
  core_.Send(peer_, std::move(msg_));
  msg_.Clear();
  bytes_ = 0;
}

void Replication::SendEntries(const std::string& peer_id, const std::vector<ItemKey>& keys) {
  Peer& peer = peers_[peer_id];
  auto now = core_.env().Now();
  auto& keygroups = core_.keygroups();
  std::map<std::string, ReplicateBatcher> by_keygroup;
  for (const auto& ik : keys) {
    auto entry = peer.outbox.find(ik);
    if (entry == peer.outbox.end()) continue;  // acknowledged or dropped meanwhile
    auto kg = keygroups.find(ik.first);
    if (kg == keygroups.end()) continue;
    // A catalog entry changed in a batch that is held (Core::StorageFault) is not durable yet;
    // entries wait until writes are.
    if (ik.second.empty() && !core_.StorageFault().ok()) continue;
    entry->second.last_sent = now;
    if (ik.second.empty()) {
      proto::PeerMessage msg;
      *msg.mutable_meta_update()->mutable_meta() = kg->second.meta;
      core_.Send(peer_id, std::move(msg));
      continue;
    }
    auto item = kg->second.items.find(ik.second);
    if (item == kg->second.items.end()) continue;
    by_keygroup.try_emplace(ik.first, core_, peer_id, kg->second, /*repair=*/false)
        .first->second.Add(ik.second, item->second);
  }
  for (auto& [name, batcher] : by_keygroup) batcher.Flush();
}

void Replication::RetryPeer(const std::string& peer_id) {
  Peer& peer = peers_[peer_id];
  if (peer.outbox.empty()) {
    peer.backlog = false;
    return;
  }
  auto now = core_.env().Now();
  auto& keygroups = core_.keygroups();
  std::vector<ItemKey> due;
  size_t bytes = 0;
  auto it = peer.outbox.upper_bound(peer.cursor);
  for (size_t scanned = 0; scanned < std::min(kMaxScanPerRound, peer.outbox.size()); ++scanned) {
    if (it == peer.outbox.end()) it = peer.outbox.begin();
    if (now - it->second.last_sent >= core_.options().retry_interval) {
      due.push_back(it->first);
      auto kg = keygroups.find(it->first.first);
      if (kg != keygroups.end() && !it->first.second.empty()) {
        auto item = kg->second.items.find(it->first.second);
        if (item != kg->second.items.end()) bytes += item->second.value.size();
      }
      bytes += it->first.second.size() + kItemOverhead;
      if (bytes >= core_.batch_bytes() || due.size() >= kMaxItemsPerMessage) {
        peer.cursor = it->first;
        break;
      }
    }
    peer.cursor = it->first;
    ++it;
  }
  peer.backlog = !due.empty();
  SendEntries(peer_id, due);
}

void Replication::OnRetryTick() {
  auto now = core_.env().Now();
  const NodeOptions& o = core_.options();
  for (auto& [peer_id, peer] : peers_) {
    if (peer.outbox.empty() || now < peer.next_retry) continue;
    // A node that left keeps what it owes in its outbox and sends to nobody: its peers are out
    // of the peer table (Membership::Apply) until it joins again.
    if (!peer_table_.Contains(peer_id)) continue;
    // Back off while the peer stays silent; a message from it resets the backoff (OnHeard).
    core::TimePoint last_heard = peer_table_.LastHeard(peer_id);
    bool silent = last_heard == core::TimePoint{} || now - last_heard > peer.backoff;
    RetryPeer(peer_id);
    if (silent) {
      peer.backoff = std::min(2 * peer.backoff, o.max_retry_interval);
      if (peer.backoff > o.retry_interval) backed_off_.insert(peer_id);
    }
    peer.next_retry = now + peer.backoff;
  }
  core_.After(o.retry_interval, [this] { OnRetryTick(); });
}

void Replication::OnHeard(const std::string& peer_id, core::TimePoint now) {
  // Called for every message: only the (few) backed-off peers are looked up.
  if (backed_off_.empty()) return;
  auto it = backed_off_.find(peer_id);
  if (it == backed_off_.end()) return;
  backed_off_.erase(it);
  // The peer is back: resume pushing its backlog now rather than after the backoff.
  Peer& peer = peers_.at(peer_id);
  peer.backoff = core_.options().retry_interval;
  peer.next_retry = now;
}

void Replication::AwaitReplicas(const Keygroup& kg, const std::string& key, const Version& version,
                                proto::Response response, Done done) {
  uint64_t op = core_.NextOpId();
  SyncWrite& w = sync_writes_[op];
  w.keygroup = kg.meta.name();
  w.key = key;
  w.version = version;
  for (const auto& r : kg.meta.replicas()) {
    if (r.node() != core_.id()) w.waiting.insert(r.node());
  }
  w.response = std::move(response);
  w.done = std::move(done);
  w.timer = core_.After(core_.options().sync_write_timeout, [this, op] {
    auto it = sync_writes_.find(op);
    if (it == sync_writes_.end()) return;
    SyncWrite w = std::move(it->second);
    sync_writes_.erase(it);
    std::string names;
    for (const auto& n : w.waiting) names += (names.empty() ? "" : ", ") + n;
    core_.Fail(w.done, std::move(w.response),
               core::Status::DeadlineExceeded(
                   "write to '" + w.keygroup + "' is durable at " + core_.id() +
                   " and keeps replicating, but replicas " + names + " did not confirm within " +
                   std::to_string(
                       static_cast<int64_t>(core::ToMillis(core_.options().sync_write_timeout))) +
                   " ms"));
  });
}

void Replication::FinishSyncWrites(const std::string& peer, const std::string& keygroup,
                                   const std::string& key, const Version& version) {
  for (auto it = sync_writes_.begin(); it != sync_writes_.end();) {
    SyncWrite& w = it->second;
    if (w.keygroup == keygroup && w.key == key && !(version < w.version)) {
      w.waiting.erase(peer);
      if (w.waiting.empty()) {
        core_.CancelTimer(w.timer);
        core_.Complete(w.done, std::move(w.response));
        it = sync_writes_.erase(it);
        continue;
      }
    }
    ++it;
  }
}

void Replication::DropDrainedItems(Keygroup& kg) {
  if (kg.replica || kg.items.empty()) return;
  for (const auto& [peer_id, peer] : peers_) {
    auto lo = peer.outbox.lower_bound({kg.meta.name(), std::string(1, '\0')});
    if (lo != peer.outbox.end() && lo->first.first == kg.meta.name()) return;  // still owed
  }
  core_.DropItems(kg);
}

void Replication::OnKeygroupChanged(const KeygroupChange& change) {
  Keygroup& kg = change.kg;
  const std::string& name = kg.meta.name();
  // Outbox entries for peers that are no longer replicas, or of an old incarnation or a deleted
  // keygroup, are owed to nobody. A replica that was removed keeps its items and its entries for
  // the remaining replicas until they have them (DropDrainedItems).
  for (auto& [peer_id, peer] : peers_) {
    if (change.live && IsReplicaIn(kg.meta, peer_id)) continue;
    auto lo = peer.outbox.lower_bound({name, std::string(1, '\0')});
    while (lo != peer.outbox.end() && lo->first.first == name) {
      auto next = std::next(lo);
      if (!lo->first.second.empty()) EraseOutbox(peer_id, lo);
      lo = next;
    }
  }
  // Synchronous writes stop waiting for nodes that are no longer replicas.
  StopWaiting(name, [&](const std::string& n) { return !change.live || !IsReplicaIn(kg.meta, n); });
  // Whoever holds items (a replica, or a removed one still handing them on) pushes all of them to
  // replicas that joined since it last looked, or joined again, so that a write made before it
  // learned of them is not missed by their pull.
  if (change.live && !kg.items.empty()) {
    for (const auto& r : kg.meta.replicas()) {
      if (r.node() == core_.id() || !peers_.contains(r.node())) continue;
      auto old = change.old_joined.find(r.node());
      if (old != change.old_joined.end() && old->second == Version::FromProto(r.joined())) {
        continue;
      }
      for (const auto& [key, item] : kg.items) MarkDirty(r.node(), name, key, item.version, false);
    }
  }
  DropDrainedItems(kg);
}

void Replication::OnReplicate(const std::string& from, proto::Replicate& msg) {
  auto& keygroups = core_.keygroups();
  auto it = keygroups.find(msg.keygroup());
  if (it == keygroups.end()) return;  // the catalog entry has not arrived yet: no ack, retried
  Keygroup& kg = it->second;
  Version incarnation = Version::FromProto(msg.incarnation());
  Version local_incarnation = Version::FromProto(kg.meta.created());
  if (local_incarnation < incarnation) return;  // a newer incarnation this node does not know yet
  bool stale = incarnation < local_incarnation || !kg.replica;
  if (stale && Version::FromProto(kg.meta.version()) < Version::FromProto(msg.meta_version())) {
    return;  // the sender knows a newer catalog entry (maybe adding this node): wait for it
  }
  proto::PeerMessage ack;
  auto* a = ack.mutable_replicate_ack();
  a->set_keygroup(msg.keygroup());
  for (auto& item : *msg.mutable_items()) {
    auto* kv = a->add_applied();
    kv->set_key(item.key());
    *kv->mutable_version() = item.version();
    if (stale) continue;  // acknowledged so the sender stops, but not applied
    int64_t written_us = item.version().wall_us();
    bool applied = core_.ApplyRemote(kg, item.key(),
                                     StoredItem{std::move(*item.mutable_value()),
                                                Version::FromProto(item.version()), item.deleted()},
                                     msg.repair());
    if (applied && msg.repair()) {
      ++core_.metrics().repaired_items;
    } else if (applied) {
      NodeMetrics& m = core_.metrics();
      ++m.replicated_items;
      // Across hosts the clocks' offset may make it negative: counted as 0, so that _sum only
      // grows.
      m.replication_lag.Observe(
          std::max(0.0, static_cast<double>(core_.env().WallMicros() - written_us) / 1e6));
    }
  }
  core_.Send(from, std::move(ack));
}

void Replication::OnReplicateAck(const std::string& from, const proto::ReplicateAck& msg) {
  Peer& peer = peers_[from];
  for (const auto& kv : msg.applied()) {
    Version v = Version::FromProto(kv.version());
    auto it = peer.outbox.find({msg.keygroup(), kv.key()});
    if (it != peer.outbox.end() && !(v < it->second.version)) EraseOutbox(from, it);
    FinishSyncWrites(from, msg.keygroup(), kv.key(), v);
  }
  auto& keygroups = core_.keygroups();
  if (auto kg = keygroups.find(msg.keygroup()); kg != keygroups.end()) {
    DropDrainedItems(kg->second);
  }
  if (peer.backlog) RetryPeer(from);
}

void Replication::OnMetaAck(const std::string& from, const proto::MetaAck& msg) {
  // Done when the peer has the version owed, or the entry as it is now (what is sent is always the
  // current entry, which may be older than the change that was owed, when a deletion or a newer
  // incarnation won).
  Peer& peer = peers_.at(from);
  auto it = peer.outbox.find({msg.keygroup(), ""});
  auto& keygroups = core_.keygroups();
  auto kg = keygroups.find(msg.keygroup());
  Version acked = Version::FromProto(msg.version());
  if (it != peer.outbox.end() &&
      (!(acked < it->second.version) ||
       (kg != keygroups.end() && acked == Version::FromProto(kg->second.meta.version())))) {
    EraseOutbox(from, it);
  }
}

}  // namespace enoki::node
