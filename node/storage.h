// StorageEngine: where a node makes its state durable. The node keeps all of its state in memory
// and serves reads from there; an engine only persists batches of changes atomically and hands the
// state back at start-up. Engines: MemoryStorage (simulation and tests: survives a simulated crash
// of the node object, not of the process) and SqliteStorage (real nodes, WAL mode).
#pragma once

#include <functional>
#include <optional>
#include <string>
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

// Changes that become durable together, applied in this order: keygroups, dropped keygroup items,
// items, outbox erasures, outbox puts.
struct WriteBatch {
  std::vector<KeygroupRecord> keygroups;   // upsert by meta.name
  std::vector<std::string> drop_items_of;  // erase every item of these keygroups
  std::vector<std::pair<std::string, std::string>> item_keys;  // (keygroup, key), parallel to items
  std::vector<StoredItem> items;                               // upsert
  std::vector<OutboxRecord> outbox_erase;  // by (peer, keygroup, key); version ignored
  std::vector<OutboxRecord> outbox_put;    // upsert by (peer, keygroup, key)

  bool empty() const {
    return keygroups.empty() && drop_items_of.empty() && items.empty() && outbox_erase.empty() &&
           outbox_put.empty();
  }
  void Clear() { *this = WriteBatch(); }
};

// What Load hands back, one record at a time.
struct LoadVisitor {
  std::function<void(KeygroupRecord&&)> keygroup;
  std::function<void(const std::string& keygroup, const std::string& key, StoredItem&&)> item;
  std::function<void(OutboxRecord&&)> outbox;
};

class StorageEngine {
 public:
  virtual ~StorageEngine() = default;
  // Visits every stored keygroup, then every item, then every outbox record.
  [[nodiscard]] virtual core::Status Load(const LoadVisitor& visitor) = 0;
  // Makes the whole batch durable, or nothing of it. When this returns ok the changes survive a
  // crash of the process (and, with SqliteStorage's full sync, of the machine).
  [[nodiscard]] virtual core::Status Commit(const WriteBatch& batch) = 0;
};

}  // namespace enoki::node
