// MemoryStorage: a StorageEngine that keeps the durable state in memory. Used by simulation and
// tests: the node object can be destroyed (a simulated crash, losing whatever it had not
// committed) and a new one loads from the same MemoryStorage. Nothing survives the process.
// Hash maps, nested by keygroup (and peer): a commit touches a few entries among many, and a
// simulation holds thousands of stores; Load sorts, so both engines load in the same order.
// Catalog entries are kept encoded, as a database keeps them: the nodes of a large simulation
// hold a million of them, and a message object takes several times the memory of its encoding.
// Not thread-safe: one node's loop thread uses it.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

#include "node/storage.h"

namespace enoki::node {

class MemoryStorage : public StorageEngine {
 public:
  // Visits copies of every keygroup (by name), then every item (by keygroup, key), then every
  // outbox record (by peer, keygroup, key), each in byte order. Ok (unless a catalog entry it
  // encoded does not parse back: a bug).
  core::Status Load(const LoadVisitor& visitor) override;
  // Applies the batch's net effect; fails, applying nothing, with the fault set by FailCommits.
  core::Status Commit(const WriteBatch& batch) override;
  core::Result<std::optional<StoredItem>> LoadItem(const std::string& keygroup,
                                                   const std::string& key) override;
  // Every commit from now on fails with `fault` (ok: none does), as on a full or broken disk.
  void FailCommits(core::Status fault) { fault_ = std::move(fault); }

 private:
  template <typename V>
  using ByName = std::unordered_map<std::string, V>;

  struct EncodedKeygroup {
    std::string meta;  // proto::KeygroupMeta, encoded
    bool ready = false;
  };
  std::map<std::string, EncodedKeygroup> keygroups_;
  ByName<ByName<StoredItem>> items_;        // keygroup -> key -> item
  ByName<ByName<ByName<Version>>> outbox_;  // peer -> keygroup -> key -> version
  std::map<std::string, std::string> functions_;
  std::map<std::string, proto::Member> members_;
  core::Status fault_;
};

}  // namespace enoki::node
