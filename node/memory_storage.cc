// In-memory storage engine.
#include "node/memory_storage.h"

#include <algorithm>
#include <vector>

namespace enoki::node {
namespace {

// The entries of `map`, by key in byte order.
template <typename V>
std::vector<const std::pair<const std::string, V>*> Sorted(
    const std::unordered_map<std::string, V>& map) {
  std::vector<const std::pair<const std::string, V>*> out;
  for (const auto& entry : map) out.push_back(&entry);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->first < b->first; });
  return out;
}

}  // namespace

core::Status MemoryStorage::Load(const LoadVisitor& visitor) {
  if (visitor.keygroup) {
    for (const auto& [name, encoded] : keygroups_) {
      KeygroupRecord rec;
      if (!rec.meta.ParseFromString(encoded.meta)) {  // Commit encoded it: a bug
        return core::Status::Internal("keygroup '" + name + "' kept in memory does not parse");
      }
      rec.ready = encoded.ready;
      visitor.keygroup(std::move(rec));
    }
  }
  if (visitor.item) {
    for (const auto* kg : Sorted(items_)) {
      for (const auto* item : Sorted(kg->second)) {
        visitor.item(kg->first, item->first, StoredItem(item->second));
      }
    }
  }
  if (visitor.outbox) {
    for (const auto* peer : Sorted(outbox_)) {
      for (const auto* kg : Sorted(peer->second)) {
        for (const auto* key : Sorted(kg->second)) {
          visitor.outbox(OutboxRecord{peer->first, kg->first, key->first, key->second});
        }
      }
    }
  }
  for (const auto& [name, spec] : functions_) {
    if (visitor.function) visitor.function(name, std::string(spec));
  }
  for (const auto& [id, member] : members_) {
    if (visitor.member) visitor.member(proto::Member(member));
  }
  return core::Status::Ok();
}

core::Result<std::optional<StoredItem>> MemoryStorage::LoadItem(const std::string& keygroup,
                                                                const std::string& key) {
  std::optional<StoredItem> out;
  auto kg = items_.find(keygroup);
  if (kg == items_.end()) return out;
  auto item = kg->second.find(key);
  if (item != kg->second.end()) out = item->second;
  return out;
}

core::Status MemoryStorage::Commit(const WriteBatch& batch) {
  if (!fault_.ok()) return fault_;
  for (const auto& [name, rec] : batch.keygroups()) {
    EncodedKeygroup& encoded = keygroups_[name];
    rec.meta.SerializeToString(&encoded.meta);
    encoded.ready = rec.ready;
  }
  for (const auto& name : batch.drops()) items_.erase(name);
  for (const auto& [key, item] : batch.items()) items_[key.first][key.second] = item;
  for (const auto& [key, version] : batch.outbox()) {
    const auto& [peer, keygroup, item] = key;
    if (version) {
      outbox_[peer][keygroup][item] = *version;
      continue;
    }
    auto p = outbox_.find(peer);
    if (p == outbox_.end()) continue;
    auto k = p->second.find(keygroup);
    if (k == p->second.end()) continue;
    k->second.erase(item);
    if (k->second.empty()) p->second.erase(k);
    if (p->second.empty()) outbox_.erase(p);
  }
  for (const auto& [name, spec] : batch.functions()) {
    if (spec) {
      functions_[name] = *spec;
    } else {
      functions_.erase(name);
    }
  }
  for (const auto& [id, member] : batch.members()) {
    if (member) {
      members_[id] = *member;
    } else {
      members_.erase(id);
    }
  }
  return core::Status::Ok();
}

}  // namespace enoki::node
