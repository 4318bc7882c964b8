// In-memory storage engine: maps keyed like the SQLite tables.
#include "node/memory_storage.h"

namespace enoki::node {

core::Status MemoryStorage::Load(const LoadVisitor& visitor) {
  for (const auto& [name, rec] : keygroups_) {
    if (visitor.keygroup) visitor.keygroup(KeygroupRecord(rec));
  }
  for (const auto& [k, item] : items_) {
    if (visitor.item) visitor.item(k.first, k.second, StoredItem(item));
  }
  for (const auto& [k, version] : outbox_) {
    if (visitor.outbox) {
      visitor.outbox(OutboxRecord{std::get<0>(k), std::get<1>(k), std::get<2>(k), version});
    }
  }
  return core::Status::Ok();
}

core::Status MemoryStorage::Commit(const WriteBatch& batch) {
  for (const auto& rec : batch.keygroups) keygroups_[rec.meta.name()] = rec;
  for (const auto& name : batch.drop_items_of) {
    auto it = items_.lower_bound({name, ""});
    while (it != items_.end() && it->first.first == name) it = items_.erase(it);
  }
  for (size_t i = 0; i < batch.items.size(); ++i) items_[batch.item_keys[i]] = batch.items[i];
  for (const auto& r : batch.outbox_erase) outbox_.erase({r.peer, r.keygroup, r.key});
  for (const auto& r : batch.outbox_put) outbox_[{r.peer, r.keygroup, r.key}] = r.version;
  return core::Status::Ok();
}

}  // namespace enoki::node
