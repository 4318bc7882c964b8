// Anti-entropy: digest exchanges between the replicas of a keygroup, and their repairs; the
// catalog's exchange between any two nodes.
#include "node/anti_entropy.h"

#include <unordered_map>

#include "core/hash.h"
#include "node/catalog.h"

namespace enoki::node {
namespace {

// SplitMix64's finalizer: spreads FNV's bits over the whole word (its low bits pick the bucket).
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// `v` hashed on from `h` as 8 little-endian bytes (the same on every host).
uint64_t HashWord(uint64_t v, uint64_t h) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (8 * i));
  return core::Fnv1a(std::string_view(bytes, 8), h);
}

// This node's entries for one peer (it lacks them or holds older ones), sent in CatalogEntries
// messages of about Core::batch_bytes() each (an entry larger than that goes alone).
class EntrySender {
 public:
  EntrySender(Core& core, const std::string& peer) : core_(core), peer_(peer) {}
  void Add(const Keygroup& kg) {
    *msg_.mutable_catalog_entries()->add_entries() = kg.meta;
    bytes_ += kg.meta.ByteSizeLong();
    ++core_.metrics().catalog_entries_sent;
    if (bytes_ >= core_.batch_bytes()) Flush();
  }
  void Flush() {
    if (!msg_.has_catalog_entries()) return;
    core_.Send(peer_, std::move(msg_));
    msg_.Clear();
    bytes_ = 0;
  }

 private:
  Core& core_;
  const std::string& peer_;
  proto::PeerMessage msg_;
  size_t bytes_ = 0;
};

// The digest of `kg`'s items written before `before_us`, bucket by bucket.
std::vector<uint64_t> Digest(const Keygroup& kg, int64_t before_us) {
  std::vector<uint64_t> digest(kDigestBuckets);
  for (const auto& [key, item] : kg.items) {
    if (item.version.wall_us < before_us) digest[DigestBucket(key)] ^= DigestHash(key, item);
  }
  return digest;
}

// `v` hashed on from `h` as its three fields.
uint64_t HashVersion(const proto::Version& v, uint64_t h) {
  h = HashWord(static_cast<uint64_t>(v.wall_us()), h);
  h = HashWord(v.logical(), h);
  return core::Fnv1aField(v.node(), h);
}

// The digest of the whole catalog, deleted entries included.
uint64_t CatalogDigestOf(const KeygroupMap& keygroups) {
  uint64_t digest = 0;
  for (const auto& [name, kg] : keygroups) {
    digest ^= CatalogEntryHash(name, kg.meta.created(), kg.meta.version(), kg.meta.deleted());
  }
  return digest;
}

}  // namespace

uint32_t DigestBucket(const std::string& key) {
  return static_cast<uint32_t>(Mix(core::Fnv1a(key)) % kDigestBuckets);
}

uint64_t DigestHash(const std::string& key, const StoredItem& item) {
  uint64_t h = core::Fnv1aField(key, core::kFnv1aOffset);
  h = HashWord(static_cast<uint64_t>(item.version.wall_us), h);
  h = HashWord(item.version.logical, h);
  h = core::Fnv1aField(item.version.node, h);
  return Mix(HashWord(item.deleted ? 1 : 0, h));
}

uint64_t CatalogEntryHash(const std::string& name, const proto::Version& created,
                          const proto::Version& version, bool deleted) {
  uint64_t h = core::Fnv1aField(name, core::kFnv1aOffset);
  h = HashVersion(created, h);
  h = HashVersion(version, h);
  return Mix(HashWord(deleted ? 1 : 0, h));
}

AntiEntropy::AntiEntropy(Core& core, const PeerTable& peers) : core_(core), peers_(peers) {}

void AntiEntropy::Start() {
  core::Duration interval = core_.options().anti_entropy_interval;
  if (interval <= core::Duration::zero()) return;
  // The first round after 0.5 to 1.5 intervals, by the node's id: replicas started together do
  // not start exchanges with each other at the same moment (each would repair the other twice).
  double offset = 0.5 + static_cast<double>(Mix(core::Fnv1a(core_.id())) >> 11) / 0x1p53;
  core_.After(std::chrono::duration_cast<core::Duration>(interval * offset), [this] { OnTick(); });
}

void AntiEntropy::OnTick() {
  auto& keygroups = core_.keygroups();
  auto now = core_.env().Now();
  int64_t before_us = core_.env().WallMicros() -
                      std::chrono::duration_cast<std::chrono::microseconds>(kDigestSettle).count();
  size_t walked = 0;
  auto it = keygroups.lower_bound(cursor_);
  for (size_t visited = 0; visited < keygroups.size() && walked < kItemsPerInterval; ++visited) {
    if (it == keygroups.end()) it = keygroups.begin();
    Keygroup& kg = it->second;
    ++it;
    if (!kg.ready || kg.meta.deleted()) continue;
    std::vector<std::string> others;
    for (const auto& r : kg.meta.replicas()) {
      if (r.node() != core_.id() && peers_.Contains(r.node())) others.push_back(r.node());
    }
    // The next replica in turn that is up.
    size_t& next = next_peer_[kg.meta.name()];
    for (size_t i = 0; i < others.size(); ++i) {
      const std::string& peer = others[(next + i) % others.size()];
      const PeerTable::Peer* p = peers_.peers().contains(peer) ? &peers_.peers().at(peer) : nullptr;
      if (p == nullptr || !peers_.IsLive(*p, now)) continue;
      next = (next + i + 1) % others.size();
      ++core_.metrics().digest_exchanges;
      SendDigest(peer, kg, before_us, 0);
      walked += kg.items.size();
      break;
    }
  }
  cursor_ = it == keygroups.end() ? std::string() : it->first;
  // The catalog: with the next live peer after the one asked last.
  const auto& peers = peers_.peers();
  auto p = peers.upper_bound(catalog_peer_);
  for (size_t i = 0; i < peers.size(); ++i, ++p) {
    if (p == peers.end()) p = peers.begin();
    if (!peers_.IsLive(p->second, now)) continue;
    catalog_peer_ = p->first;
    ++core_.metrics().catalog_exchanges;
    SendCatalogDigest(p->first, "");
    break;
  }
  core_.After(core_.options().anti_entropy_interval, [this] { OnTick(); });
}

void AntiEntropy::SendDigest(const std::string& peer, const Keygroup& kg, int64_t before_us,
                             uint32_t first_bucket) {
  proto::PeerMessage msg;
  auto* d = msg.mutable_digest_request();
  d->set_keygroup(kg.meta.name());
  *d->mutable_incarnation() = kg.meta.created();
  d->set_before_us(before_us);
  d->set_first_bucket(first_bucket);
  for (uint64_t b : Digest(kg, before_us)) d->add_buckets(b);
  core_.Send(peer, std::move(msg));
}

Keygroup* AntiEntropy::ReadyReplica(const std::string& name, const proto::Version& incarnation) {
  Keygroup* kg = core_.FindLive(name);
  if (kg == nullptr || !kg->ready ||
      Version::FromProto(kg->meta.created()) != Version::FromProto(incarnation)) {
    return nullptr;
  }
  return kg;
}

void AntiEntropy::OnDigestRequest(const std::string& from, const proto::DigestRequest& msg) {
  proto::PeerMessage out;
  auto* reply = out.mutable_digest_reply();
  reply->set_keygroup(msg.keygroup());
  *reply->mutable_incarnation() = msg.incarnation();
  reply->set_before_us(msg.before_us());
  Keygroup* kg = ReadyReplica(msg.keygroup(), msg.incarnation());
  if (kg == nullptr) {
    reply->set_code(core_.keygroups().contains(msg.keygroup()) ? proto::FAILED_PRECONDITION
                                                               : proto::NOT_FOUND);
    return core_.Send(from, std::move(out));
  }
  std::vector<uint64_t> mine = Digest(*kg, msg.before_us());
  std::vector<bool> differs(kDigestBuckets);
  bool any = false;
  for (uint32_t b = msg.first_bucket(); b < kDigestBuckets; ++b) {
    differs[b] = mine[b] != msg.buckets(static_cast<int>(b));
    any = any || differs[b];
  }
  if (any) {
    std::vector<std::vector<std::pair<const std::string*, const Version*>>> listed(kDigestBuckets);
    for (const auto& [key, item] : kg->items) {
      if (item.version.wall_us >= msg.before_us()) continue;
      uint32_t b = DigestBucket(key);
      if (differs[b]) listed[b].emplace_back(&key, &item.version);
    }
    size_t count = 0;
    for (uint32_t b = msg.first_bucket(); b < kDigestBuckets; ++b) {
      if (!differs[b]) continue;
      if (count > 0 && count + listed[b].size() > kMaxListedItems) {
        reply->set_more(true);
        break;
      }
      reply->add_buckets(b);
      for (const auto& [key, version] : listed[b]) {
        auto* kv = reply->add_items();
        kv->set_key(*key);
        version->ToProto(kv->mutable_version());
      }
      count += listed[b].size();
    }
  }
  core_.Send(from, std::move(out));
}

void AntiEntropy::OnDigestReply(const std::string& from, const proto::DigestReply& msg) {
  Keygroup* kg = ReadyReplica(msg.keygroup(), msg.incarnation());
  if (kg == nullptr) return;
  if (msg.code() == proto::NOT_FOUND) {
    // It lost the keygroup (or never heard of it): its entry first; the next exchange repairs
    // the items.
    EntrySender entry(core_, from);
    entry.Add(*kg);
    return entry.Flush();
  }
  if (msg.code() != proto::OK || msg.buckets_size() == 0) return;
  std::vector<bool> listed(kDigestBuckets);
  for (uint32_t b : msg.buckets()) listed[b] = true;
  std::unordered_map<std::string_view, Version> theirs;
  for (const auto& kv : msg.items()) theirs.emplace(kv.key(), Version::FromProto(kv.version()));

  ReplicateBatcher push(core_, from, *kg, /*repair=*/true);
  proto::PeerMessage fetch;
  auto* want = fetch.mutable_repair_request();
  want->set_keygroup(msg.keygroup());
  *want->mutable_incarnation() = msg.incarnation();
  for (const auto& [key, item] : kg->items) {
    if (!listed[DigestBucket(key)]) continue;
    auto t = theirs.find(key);
    if (t == theirs.end()) {
      // Written later than the cut-off: replication's to bring.
      if (item.version.wall_us >= msg.before_us()) continue;
    } else if (!(t->second < item.version)) {
      if (item.version < t->second) want->add_keys(key);
      theirs.erase(t);
      continue;
    } else {
      theirs.erase(t);
    }
    push.Add(key, item);
    ++core_.metrics().repair_items_sent;
  }
  push.Flush();
  for (const auto& [key, version] : theirs) want->add_keys(std::string(key));
  if (want->keys_size() > 0) core_.Send(from, std::move(fetch));
  if (msg.more()) SendDigest(from, *kg, msg.before_us(), msg.buckets(msg.buckets_size() - 1) + 1);
}

void AntiEntropy::OnRepairRequest(const std::string& from, const proto::RepairRequest& msg) {
  Keygroup* kg = ReadyReplica(msg.keygroup(), msg.incarnation());
  if (kg == nullptr) return;
  ReplicateBatcher push(core_, from, *kg, /*repair=*/true);
  for (const auto& key : msg.keys()) {
    auto it = kg->items.find(key);
    if (it == kg->items.end()) continue;
    push.Add(key, it->second);
    ++core_.metrics().repair_items_sent;
  }
  push.Flush();
}

void AntiEntropy::SendCatalogDigest(const std::string& peer, const std::string& after) {
  proto::PeerMessage msg;
  auto* d = msg.mutable_catalog_digest();
  d->set_digest(CatalogDigestOf(core_.keygroups()));
  d->set_after(after);
  core_.Send(peer, std::move(msg));
}

void AntiEntropy::OnCatalogDigest(const std::string& from, const proto::CatalogDigest& msg) {
  const auto& keygroups = core_.keygroups();
  proto::PeerMessage out;
  auto* list = out.mutable_catalog_list();
  if (CatalogDigestOf(keygroups) == msg.digest()) {
    list->set_agree(true);
    return core_.Send(from, std::move(out));
  }
  ++core_.metrics().catalog_lists_sent;
  list->set_after(msg.after());
  for (auto it = keygroups.upper_bound(msg.after()); it != keygroups.end(); ++it) {
    if (static_cast<size_t>(list->entries_size()) == kMaxListedEntries) {
      list->set_more(true);
      break;
    }
    const proto::KeygroupMeta& meta = it->second.meta;
    auto* e = list->add_entries();
    e->set_name(it->first);
    *e->mutable_created() = meta.created();
    *e->mutable_version() = meta.version();
    e->set_deleted(meta.deleted());
  }
  core_.Send(from, std::move(out));
}

void AntiEntropy::OnCatalogList(const std::string& from, const proto::CatalogList& msg) {
  if (msg.agree()) return;
  const auto& keygroups = core_.keygroups();
  proto::PeerMessage fetch;
  auto* want = fetch.mutable_catalog_want();
  // Walks this node's entries and the listed ones together, both in name order, over the range
  // the list covers: after `after`, up to its last entry (with `more`) or to the end. It sends at
  // most kMaxListedEntries entries (a peer that lost a large catalog lists none), and goes on
  // from the last name it compared with the next CatalogDigest.
  EntrySender entries(core_, from);
  auto mine = keygroups.upper_bound(msg.after());
  const std::string* last = msg.more() ? &msg.entries(msg.entries_size() - 1).name() : nullptr;
  const std::string* compared = nullptr;  // the last name compared
  size_t sent = 0;
  bool stopped = false;
  int i = 0;
  for (;;) {
    const proto::CatalogEntryVersion* theirs = i < msg.entries_size() ? &msg.entries(i) : nullptr;
    bool mine_left = mine != keygroups.end() && (last == nullptr || mine->first <= *last);
    if (theirs == nullptr && !mine_left) break;
    if (sent == kMaxListedEntries) {
      stopped = true;
      break;
    }
    if (mine_left && (theirs == nullptr || mine->first < theirs->name())) {
      entries.Add(mine->second);  // the peer lacks it
      ++sent;
      compared = &mine->first;
      ++mine;
      continue;
    }
    compared = &theirs->name();
    ++i;
    if (!mine_left || mine->first != theirs->name()) {
      want->add_names(theirs->name());  // this node lacks it
      continue;
    }
    proto::KeygroupMeta other;
    *other.mutable_created() = theirs->created();
    *other.mutable_version() = theirs->version();
    other.set_deleted(theirs->deleted());
    if (Supersedes(mine->second.meta, other)) {
      entries.Add(mine->second);
      ++sent;
    } else if (Supersedes(other, mine->second.meta)) {
      want->add_names(theirs->name());
    }
    ++mine;
  }
  entries.Flush();
  if (want->names_size() > 0) core_.Send(from, std::move(fetch));
  if (stopped) {
    SendCatalogDigest(from, *compared);
  } else if (msg.more()) {
    SendCatalogDigest(from, *last);
  }
}

void AntiEntropy::OnCatalogWant(const std::string& from, const proto::CatalogWant& msg) {
  EntrySender entries(core_, from);
  for (const auto& name : msg.names()) {
    auto it = core_.keygroups().find(name);
    if (it != core_.keygroups().end()) entries.Add(it->second);
  }
  entries.Flush();
}

}  // namespace enoki::node
