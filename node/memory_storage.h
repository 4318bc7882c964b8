// MemoryStorage: a StorageEngine that keeps the durable state in memory. Used by simulation and
// tests: the node object can be destroyed (a simulated crash, losing whatever it had not
// committed) and a new one loads from the same MemoryStorage. Nothing survives the process.
// Not thread-safe: one node's loop thread uses it.
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "node/storage.h"

namespace enoki::node {

class MemoryStorage : public StorageEngine {
 public:
  // Visits copies of every keygroup (by name), then every item (by keygroup, key), then every
  // outbox record (by peer, keygroup, key), each in byte order. Always ok.
  core::Status Load(const LoadVisitor& visitor) override;
  // Applies the batch's net effect. Always ok.
  core::Status Commit(const WriteBatch& batch) override;

 private:
  std::map<std::string, KeygroupRecord> keygroups_;
  std::map<std::pair<std::string, std::string>, StoredItem> items_;
  std::map<std::tuple<std::string, std::string, std::string>, Version> outbox_;
  std::map<std::string, std::string> functions_;
};

}  // namespace enoki::node
