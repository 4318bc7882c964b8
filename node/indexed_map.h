// IndexedMap: values by name in name order (for scans, and for walks that resume after a name),
// with a hash index beside them for the look-ups of single names. A node keeps a keygroup's
// items in one (ItemMap: a get in an ordered map of 100,000 keys costs about 17 string
// comparisons and as many cache misses, the largest part of the node's own work per get) and its
// keygroups in another (KeygroupMap, node/core.h: every request and message names one).
//
// The index is open addressing with linear probing: a table of (hash, entry) slots, a power of
// two long and at most 3/4 full. A look-up reads one slot, then the entry it names, where
// std::unordered_map read a bucket, then a node of its own, then divided by a prime twice.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node/storage.h"

namespace enoki::node {

template <typename V>
class IndexedMap {
 public:
  using Ordered = std::map<std::string, V>;
  using iterator = typename Ordered::iterator;
  using const_iterator = typename Ordered::const_iterator;

  IndexedMap() = default;
  // The index names the ordered map's nodes, which a move keeps and a copy would not.
  IndexedMap(IndexedMap&&) = default;
  IndexedMap& operator=(IndexedMap&&) = default;
  IndexedMap(const IndexedMap&) = delete;
  IndexedMap& operator=(const IndexedMap&) = delete;

  iterator find(std::string_view key) {
    const Slot* s = Holding(key, Hash(key));
    return s != nullptr ? s->entry : entries_.end();
  }
  const_iterator find(std::string_view key) const {
    const Slot* s = Holding(key, Hash(key));
    return s != nullptr ? const_iterator(s->entry) : entries_.end();
  }
  bool contains(std::string_view key) const { return Holding(key, Hash(key)) != nullptr; }
  // The entry at `key`, made (default) if there is none; whether it was made.
  std::pair<iterator, bool> try_emplace(const std::string& key) {
    if (slots_.empty()) Grow();  // the table is made with the first entry
    uint64_t hash = Hash(key);
    size_t slot = Find(key, hash);
    if (slots_[slot].hash != 0) return {slots_[slot].entry, false};
    if ((entries_.size() + 1) * 4 > slots_.size() * 3) {
      Grow();
      slot = Find(key, hash);  // the empty slot it goes to, in the new table
    }
    auto it = entries_.try_emplace(key).first;
    slots_[slot] = {hash, it};
    return {it, true};
  }
  V& operator[](const std::string& key) { return try_emplace(key).first->second; }

  iterator begin() { return entries_.begin(); }
  iterator end() { return entries_.end(); }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  iterator lower_bound(const std::string& key) { return entries_.lower_bound(key); }
  iterator upper_bound(const std::string& key) { return entries_.upper_bound(key); }
  const_iterator lower_bound(const std::string& key) const { return entries_.lower_bound(key); }
  const_iterator upper_bound(const std::string& key) const { return entries_.upper_bound(key); }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  void clear() {
    slots_.clear();
    entries_.clear();
  }
  void erase(const std::string& key) {
    const Slot* s = Holding(key, Hash(key));
    if (s == nullptr) return;
    size_t hole = s - slots_.data();
    entries_.erase(s->entry);
    // Backward shift: the slots after the hole that probed past it move into it, so that every
    // key stays reachable from its home slot without a gap (no tombstones).
    const size_t mask = slots_.size() - 1;
    for (size_t next = (hole + 1) & mask; slots_[next].hash != 0; next = (next + 1) & mask) {
      size_t home = slots_[next].hash & mask;
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        slots_[hole] = slots_[next];
        hole = next;
      }
    }
    slots_[hole] = Slot{};
  }

 private:
  struct Slot {
    uint64_t hash = 0;  // 0: empty (a key's hash is never 0)
    iterator entry;
  };

  static uint64_t Hash(std::string_view key) {
    uint64_t h = std::hash<std::string_view>{}(key);
    return h == 0 ? 1 : h;
  }
  // The slot that holds `key`, or the empty one where it would go, in a table that has slots.
  size_t Find(std::string_view key, uint64_t hash) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.hash == 0 || (s.hash == hash && s.entry->first == key)) return i;
    }
  }
  // The slot that holds `key`, or nullptr: the only look-up that may meet a table not made yet
  // (a map that never held an entry has none: nodes hold an ItemMap per keygroup they know).
  const Slot* Holding(std::string_view key, uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    const Slot& s = slots_[Find(key, hash)];
    return s.hash != 0 ? &s : nullptr;
  }
  // Twice the slots (at first 8), every entry placed again (where Find puts it: keys are distinct,
  // so it compares one only on a whole hash's collision).
  void Grow() {
    std::vector<Slot> old(slots_.empty() ? 8 : slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.hash != 0) slots_[Find(s.entry->first, s.hash)] = s;
    }
  }

  Ordered entries_;
  std::vector<Slot> slots_;  // the index: every entry of entries_, by its key's hash
};

// The items of one keygroup as a node holds them in memory.
using ItemMap = IndexedMap<StoredItem>;

}  // namespace enoki::node
