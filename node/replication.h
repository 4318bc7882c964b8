// Replication: a write at a replica is pushed to the other replicas right after the commit (the
// writes of one Flush together, once the completions wrote nothing more, and before any message
// those completions queued). Each (peer, keygroup, key) stays in a durable outbox until the peer
// acknowledges that version, and is retried with backoff, so a peer that was down or cut off
// catches up once reachable. The outbox also carries catalog entries (key ""), which the catalog
// owes its peers. Synchronous keygroups answer the writer once every other replica acknowledged,
// or time out naming the replicas that did not.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "node/core.h"
#include "node/peers.h"

namespace enoki::node {

// Replicate messages of one keygroup's items to one peer, each within the batch bytes and
// kMaxItemsPerMessage: Add sends a message once it is full, Flush sends the rest.
class ReplicateBatcher {
 public:
  // `repair`: the items are anti-entropy's (Replicate.repair), not a write's replication.
  ReplicateBatcher(Core& core, std::string peer, const Keygroup& kg, bool repair);
  void Add(const std::string& key, const StoredItem& item);
  void Flush();

 private:
  Core& core_;
  std::string peer_;
  const Keygroup& kg_;
  bool repair_;
  proto::PeerMessage msg_;
  size_t bytes_ = 0;
};

class Replication {
 public:
  Replication(Core& core, const PeerTable& peers);

  // An outbox entry loaded at start-up, after the members (kept on disk, not retried, for a node
  // that is not a member).
  void Load(OutboxRecord&& rec);
  // Starts the retry rounds.
  void Start();
  // A member to replicate to from now on (this node's own id is ignored); `owe_catalog`: it is
  // new to this node, and owed every catalog entry. One to forget: what it was owed is dropped,
  // synchronous writes stop waiting for it.
  void AddPeer(const std::string& peer, bool owe_catalog);
  // Owes `peer` (a peer) every catalog entry, at once.
  void OweCatalog(const std::string& peer);
  void RemovePeer(const std::string& peer);
  size_t OutboxSize() const;
  // Entries owed to `peer`.
  size_t OutboxSize(const std::string& peer) const;

  // A write made at this node: owed to every other replica, pushed after the commit.
  void OnLocalWrite(const Keygroup& kg, const std::string& key, const Version& version);
  // The catalog entry of `keygroup` at `version` is owed to every peer, at once.
  void OweEntryToAll(const std::string& keygroup, const Version& version);
  // Answers `done` with `response` once every other replica of `kg` acknowledged `key` at
  // `version`, or with DEADLINE_EXCEEDED after the synchronous write timeout.
  void AwaitReplicas(const Keygroup& kg, const std::string& key, const Version& version,
                     proto::Response response, Done done);
  // Drops the items of a keygroup this node no longer replicates once no peer is owed any of them.
  void DropDrainedItems(Keygroup& kg);

  // A keygroup's catalog entry changed (Catalog's event).
  void OnKeygroupChanged(const KeygroupChange& change);
  // A message from `peer` arrived: a peer that was backed off gets its backlog now.
  void OnHeard(const std::string& peer, core::TimePoint now);
  void OnReplicate(const std::string& from, proto::Replicate& msg);
  void OnReplicateAck(const std::string& from, const proto::ReplicateAck& msg);
  void OnMetaAck(const std::string& from, const proto::MetaAck& msg);

 private:
  struct OutboxEntry {
    Version version;
    core::TimePoint last_sent{};  // epoch: never sent
  };
  struct Peer {
    std::map<ItemKey, OutboxEntry> outbox;
    std::vector<ItemKey> fresh;  // written since the last Flush: push at once (see fresh_peers_)
    ItemKey cursor;              // where the next retry round continues
    bool backlog = false;        // last retry round found entries to resend
    core::Duration backoff{};
    core::TimePoint next_retry{};
  };
  struct SyncWrite {
    std::string keygroup;
    std::string key;
    Version version;
    std::set<std::string> waiting;
    proto::Response response;
    Done done;
    core::TimerId timer = 0;
  };

  // (keygroup, key) at `version` is owed to `peer`; `push_now`: send it after this commit rather
  // than with the next retry round.
  void MarkDirty(const std::string& peer, const std::string& keygroup, const std::string& key,
                 const Version& version, bool push_now);
  void EraseOutbox(const std::string& peer, std::map<ItemKey, OutboxEntry>::iterator it);
  // Sends the entries to `peer`: items grouped by keygroup into messages of bounded size, catalog
  // entries one by one.
  void SendEntries(const std::string& peer, const std::vector<ItemKey>& keys);
  void SendFresh();
  void RetryPeer(const std::string& peer);
  void OnRetryTick();
  // Synchronous writes of `keygroup` (empty: of any) stop waiting for the nodes `gone` says; those
  // then waiting for nobody are answered.
  void StopWaiting(const std::string& keygroup,
                   const std::function<bool(const std::string&)>& gone);
  void FinishSyncWrites(const std::string& peer, const std::string& keygroup,
                        const std::string& key, const Version& version);

  Core& core_;
  const PeerTable& peer_table_;
  std::map<std::string, Peer> peers_;
  std::vector<std::string> fresh_peers_;  // the peers whose `fresh` is not empty
  std::set<std::string> backed_off_;      // the peers whose backoff is above the retry interval
  std::map<uint64_t, SyncWrite> sync_writes_;
};

}  // namespace enoki::node
