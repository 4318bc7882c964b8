// In-memory storage engine: ordered maps keyed like the SQLite tables' primary keys, so both
// engines load records in the same order.
#include "node/memory_storage.h"

namespace enoki::node {

core::Status MemoryStorage::Load(const LoadVisitor& visitor) {
  if (visitor.keygroup) {
    for (const auto& [name, rec] : keygroups_) visitor.keygroup(KeygroupRecord(rec));
  }
  if (visitor.item) {
    for (const auto& [k, item] : items_) visitor.item(k.first, k.second, StoredItem(item));
  }
  if (visitor.outbox) {
    for (const auto& [k, version] : outbox_) {
      visitor.outbox(OutboxRecord{std::get<0>(k), std::get<1>(k), std::get<2>(k), version});
    }
  }
  for (const auto& [name, spec] : functions_) {
    if (visitor.function) visitor.function(name, std::string(spec));
  }
  return core::Status::Ok();
}

core::Status MemoryStorage::Commit(const WriteBatch& batch) {
  for (const auto& [name, rec] : batch.keygroups()) keygroups_[name] = rec;
  for (const auto& name : batch.drops()) {
    auto it = items_.lower_bound({name, std::string()});
    while (it != items_.end() && it->first.first == name) it = items_.erase(it);
  }
  for (const auto& [key, item] : batch.items()) items_[key] = item;
  for (const auto& [key, version] : batch.outbox()) {
    if (version) {
      outbox_[key] = *version;
    } else {
      outbox_.erase(key);
    }
  }
  for (const auto& [name, spec] : batch.functions()) {
    if (spec) {
      functions_[name] = *spec;
    } else {
      functions_.erase(name);
    }
  }
  return core::Status::Ok();
}

}  // namespace enoki::node
