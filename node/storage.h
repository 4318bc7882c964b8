// StorageEngine: where a node makes its state durable. The node keeps all of its state in memory
// and serves reads from there; an engine only persists batches of changes atomically and hands the
// state back at start-up. Engines: MemoryStorage (simulation and tests: survives a simulated crash
// of the node object, not of the process) and SqliteStorage (real nodes, WAL mode).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/status.h"
#include "net/proto/enoki.pb.h"
#include "node/version.h"

namespace enoki::node {

struct StoredItem {
  std::string value;
  Version version;
  bool deleted = false;  // a tombstone
};

// A keygroup as a node keeps it: the catalog entry, and whether this node's replica holds all of
// the keygroup's data (a replica that joined later is not ready until it has pulled it).
struct KeygroupRecord {
  proto::KeygroupMeta meta;
  bool ready = false;
};

// One entry of the replication outbox: `peer` has not yet confirmed `version` of (keygroup, key).
// An empty key stands for the keygroup's catalog entry itself.
struct OutboxRecord {
  std::string peer;
  std::string keygroup;
  std::string key;
  Version version;
};

// Changes that become durable together. The batch keeps only the net effect of what was recorded,
// in the order it was recorded: a later record for the same keygroup, item or outbox entry replaces
// an earlier one, and dropping a keygroup's items discards the item writes recorded before. So an
// engine may apply the parts in any order (it applies drops before item writes).
class WriteBatch {
 public:
  using ItemKey = std::pair<std::string, std::string>;                  // (keygroup, key)
  using OutboxKey = std::tuple<std::string, std::string, std::string>;  // (peer, keygroup, key)

  void PutKeygroup(KeygroupRecord record) {
    std::string name = record.meta.name();
    keygroups_[name] = std::move(record);
  }
  void PutItem(const std::string& keygroup, const std::string& key, StoredItem item) {
    items_[{keygroup, key}] = std::move(item);
  }
  void DropItemsOf(const std::string& keygroup) {
    auto it = items_.lower_bound({keygroup, std::string()});
    while (it != items_.end() && it->first.first == keygroup) it = items_.erase(it);
    drops_.insert(keygroup);
  }
  void PutOutbox(const OutboxRecord& r) { SetOutbox({r.peer, r.keygroup, r.key}, r.version); }
  void EraseOutbox(const std::string& peer, const std::string& keygroup, const std::string& key) {
    SetOutbox({peer, keygroup, key}, std::nullopt);
  }
  // A deployed function's specification (opaque bytes), or its removal.
  void PutFunction(const std::string& name, std::string spec) {
    functions_[name] = std::move(spec);
  }
  void EraseFunction(const std::string& name) { functions_[name] = std::nullopt; }
  // A member's entry (node/membership.h), or its removal (a configured peer no longer
  // configured; one that left keeps an entry that says so).
  void PutMember(const proto::Member& member) { members_[member.id()] = member; }
  void EraseMember(const std::string& id) { members_[id] = std::nullopt; }

  // The net effect, for engines.
  const std::map<std::string, KeygroupRecord>& keygroups() const { return keygroups_; }
  const std::set<std::string>& drops() const { return drops_; }  // applied before items()
  const std::map<ItemKey, StoredItem>& items() const { return items_; }
  // An entry with a version is upserted; one without is erased.
  const std::map<OutboxKey, std::optional<Version>>& outbox() const { return outbox_; }
  // A function with a specification is upserted; one without is erased.
  const std::map<std::string, std::optional<std::string>>& functions() const { return functions_; }
  // A member with an entry is upserted; one without is erased.
  const std::map<std::string, std::optional<proto::Member>>& members() const { return members_; }

  // Whether the batch changes item (keygroup, key), or the keygroup's entry or all its items.
  bool Touches(const std::string& keygroup, const std::string& key) const {
    return items_.contains({keygroup, key}) || TouchesKeygroup(keygroup);
  }
  // The same for any of the keygroup's keys in [start, end) (end "": to the last).
  bool TouchesRange(const std::string& keygroup, const std::string& start,
                    const std::string& end) const {
    auto it = items_.lower_bound({keygroup, start});
    return (it != items_.end() && it->first.first == keygroup &&
            (end.empty() || it->first.second < end)) ||
           TouchesKeygroup(keygroup);
  }
  // Records `later`'s changes after this batch's own (so that one commit makes both durable).
  void Absorb(WriteBatch&& later) {
    for (const auto& keygroup : later.drops_) DropItemsOf(keygroup);
    for (auto& [name, record] : later.keygroups_) keygroups_[name] = std::move(record);
    for (auto& [key, item] : later.items_) items_[key] = std::move(item);
    for (auto& [key, version] : later.outbox_) SetOutbox(key, version);
    for (auto& [name, spec] : later.functions_) functions_[name] = std::move(spec);
    for (auto& [id, member] : later.members_) members_[id] = std::move(member);
    later.Clear();
  }

  // Whether the batch records more than outbox erasures. Those alone can wait for the next commit
  // (Core::kDeferredCommitDelay at most): one lost in a crash only has its item sent again, which
  // the peer, already holding it, acknowledges and ignores.
  bool urgent() const {
    return !keygroups_.empty() || !drops_.empty() || !items_.empty() || outbox_upserts_ > 0 ||
           !functions_.empty() || !members_.empty();
  }
  bool empty() const { return !urgent() && outbox_.empty(); }
  void Clear() { *this = WriteBatch(); }

 private:
  void SetOutbox(const OutboxKey& key, std::optional<Version> version) {
    auto [it, added] = outbox_.try_emplace(key);
    if (!added && it->second) --outbox_upserts_;
    if (version) ++outbox_upserts_;
    it->second = std::move(version);
  }
  bool TouchesKeygroup(const std::string& keygroup) const {
    return keygroups_.contains(keygroup) || drops_.contains(keygroup);
  }

  std::map<std::string, KeygroupRecord> keygroups_;
  std::set<std::string> drops_;
  std::map<ItemKey, StoredItem> items_;
  std::map<OutboxKey, std::optional<Version>> outbox_;
  std::map<std::string, std::optional<std::string>> functions_;
  std::map<std::string, std::optional<proto::Member>> members_;
  size_t outbox_upserts_ = 0;  // the entries of outbox_ with a version
};

// What Load hands back, one record at a time.
struct LoadVisitor {
  std::function<void(KeygroupRecord&&)> keygroup;
  std::function<void(const std::string& keygroup, const std::string& key, StoredItem&&)> item;
  std::function<void(OutboxRecord&&)> outbox;
  std::function<void(const std::string& name, std::string&& spec)> function;
  std::function<void(proto::Member&&)> member;
  // An item that failed its checksum: not handed to `item`.
  std::function<void(const std::string& keygroup, const std::string& key)> corrupt;
};

class StorageEngine {
 public:
  virtual ~StorageEngine() = default;
  // Visits every stored keygroup, then every item, every outbox record, every function and
  // every member.
  [[nodiscard]] virtual core::Status Load(const LoadVisitor& visitor) = 0;
  // Makes the whole batch durable, or nothing of it. When this returns ok the changes survive a
  // crash of the process (and, with SqliteStorage's full sync, of the machine).
  // A failed commit applies nothing of the batch and says why: ResourceExhausted when the disk
  // is full, IOError for every other failure (read-only, I/O error), naming the file.
  [[nodiscard]] virtual core::Status Commit(const WriteBatch& batch) = 0;
  // Starts making `batch` durable and calls `done` with what Commit would return, on the node's
  // thread: here, before returning (this default, for engines whose commits are quick), or later
  // (an engine that commits on a thread of its own: adapters/commit_thread.h). The node starts
  // no other commit and calls no other method until then. `done` may outlive the node.
  virtual void StartCommit(std::shared_ptr<const WriteBatch> batch,
                           std::function<void(const core::Status&)> done) {
    done(Commit(*batch));
  }
  // How many commits that this engine acknowledged its storage no longer holds, as far as it can
  // tell (found when it was opened); 0 for one that cannot tell.
  virtual uint64_t LostCommits() const { return 0; }
  // The durable state of one item (nullopt: none is stored, or it failed its checksum), as the
  // last successful Commit left it: what the node goes back to when a commit failed
  // (Core::Flush).
  [[nodiscard]] virtual core::Result<std::optional<StoredItem>> LoadItem(
      const std::string& keygroup, const std::string& key) = 0;
};

}  // namespace enoki::node
