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
  return core::Status::Ok();
}

core::Status MemoryStorage::Commit(const WriteBatch& batch) {
  if (batch.item_keys.size() != batch.items.size()) {
    return core::Status::InvalidArgument(
        "write batch has " + std::to_string(batch.item_keys.size()) + " item keys for " +
        std::to_string(batch.items.size()) + " items");
  }
  for (const auto& rec : batch.keygroups) keygroups_[rec.meta.name()] = rec;
  for (const auto& name : batch.drop_items_of) {
    auto it = items_.lower_bound({name, std::string()});
    while (it != items_.end() && it->first.first == name) it = items_.erase(it);
  }
  for (size_t i = 0; i < batch.items.size(); ++i) items_[batch.item_keys[i]] = batch.items[i];
  for (const auto& r : batch.outbox_erase) outbox_.erase({r.peer, r.keygroup, r.key});
  for (const auto& r : batch.outbox_put) outbox_[{r.peer, r.keygroup, r.key}] = r.version;
  return core::Status::Ok();
}

}  // namespace enoki::node
