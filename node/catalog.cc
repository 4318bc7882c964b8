// The catalog: keygroup entries, their changes and how they converge.
#include "node/catalog.h"

#include <algorithm>
#include <set>

namespace enoki::node {

bool Supersedes(const proto::KeygroupMeta& b, const proto::KeygroupMeta& a) {
  Version ac = Version::FromProto(a.created()), bc = Version::FromProto(b.created());
  if (ac != bc) return ac < bc;
  if (a.deleted() != b.deleted()) return b.deleted();
  return Version::FromProto(a.version()) < Version::FromProto(b.version());
}

namespace {

// Marks ready in `to` the replicas that `from` (same incarnation) marks ready with the same
// joined version. Returns whether `to` changed.
bool MergeReadiness(const proto::KeygroupMeta& from, proto::KeygroupMeta& to) {
  if (Version::FromProto(from.created()) != Version::FromProto(to.created())) return false;
  bool changed = false;
  for (auto& r : *to.mutable_replicas()) {
    if (r.ready()) continue;
    for (const auto& f : from.replicas()) {
      if (f.ready() && f.node() == r.node() &&
          Version::FromProto(f.joined()) == Version::FromProto(r.joined())) {
        r.set_ready(true);
        changed = true;
      }
    }
  }
  return changed;
}

}  // namespace

Catalog::Catalog(Core& core, const PeerTable& peers, Replication& replication)
    : core_(core), peers_(peers), replication_(replication) {}

core::Status Catalog::Create(const proto::CreateKeygroupRequest& r, const net::Caller& caller,
                             proto::Response& response) {
  const std::string& self = core_.id();
  ENOKI_RETURN_IF_ERROR(ValidateName("keygroup", r.name()));
  if (core_.FindLive(r.name()) != nullptr) {
    return core::Status::AlreadyExists("keygroup '" + r.name() + "' exists");
  }
  if (!caller.name.empty()) {
    uint32_t owned = 0;
    for (const auto& [name, kg] : core_.keygroups()) {
      owned += !kg.meta.deleted() && kg.meta.owner() == caller.name;
    }
    if (owned >= caller.quota.keygroups) {
      return core::Status::ResourceExhausted(
          "client '" + caller.name + "' owns " + std::to_string(owned) +
          " keygroups, as many as its quota allows (keygroups=" +
          std::to_string(caller.quota.keygroups) + "): delete one, or raise the quota in node " +
          self + "'s access file");
    }
  }
  std::vector<std::string> replicas(r.replicas().begin(), r.replicas().end());
  if (replicas.empty()) replicas.push_back(self);
  std::set<std::string> seen;
  for (const auto& n : replicas) {
    if (n != self && !peers_.Contains(n)) {
      return core::Status::InvalidArgument("replica '" + n + "' is not a node known to " + self);
    }
    if (!seen.insert(n).second) {
      return core::Status::InvalidArgument("replica '" + n + "' is listed twice");
    }
  }
  Version now = core_.clock().Now();
  proto::KeygroupMeta meta;
  meta.set_name(r.name());
  meta.set_mutability(r.mutability());
  meta.set_mode(r.mode());
  meta.set_owner(caller.name);
  now.ToProto(meta.mutable_created());
  for (const auto& n : replicas) {
    auto* rep = meta.add_replicas();
    rep->set_node(n);
    now.ToProto(rep->mutable_joined());
    rep->set_ready(true);
  }
  Change(meta);
  *response.mutable_keygroup() = std::move(meta);
  return core::Status::Ok();
}

core::Status Catalog::Delete(const std::string& name) {
  Keygroup* kg = core_.FindLive(name);
  if (kg == nullptr) return core::Status::NotFound("keygroup '" + name + "' does not exist");
  proto::KeygroupMeta meta = kg->meta;
  meta.set_deleted(true);
  Change(std::move(meta));
  return core::Status::Ok();
}

core::Status Catalog::ChangeReplicas(const std::string& name, const std::string& node, bool add,
                                     proto::Response& response) {
  const std::string& self = core_.id();
  Keygroup* kg = core_.FindLive(name);
  if (kg == nullptr) return core::Status::NotFound("keygroup '" + name + "' does not exist");
  proto::KeygroupMeta meta = kg->meta;
  if (add) {
    if (node != self && !peers_.Contains(node)) {
      return core::Status::InvalidArgument("node '" + node + "' is not known to " + self);
    }
    if (IsReplicaIn(meta, node)) {
      return core::Status::AlreadyExists("node '" + node + "' already holds a replica of '" + name +
                                         "'");
    }
    auto* rep = meta.add_replicas();
    rep->set_node(node);
    core_.clock().Now().ToProto(rep->mutable_joined());
  } else {
    if (!IsReplicaIn(meta, node)) {
      return core::Status::NotFound("node '" + node + "' holds no replica of '" + name + "'");
    }
    if (meta.replicas_size() == 1) {
      return core::Status::FailedPrecondition("cannot remove the last replica of '" + name +
                                              "'; delete the keygroup instead");
    }
    // Someone must hold all the data afterwards: a replica still pulling it does not.
    std::string joining;
    bool other_ready = false;
    for (const auto& r : meta.replicas()) {
      if (r.node() == node) continue;
      if (r.ready()) other_ready = true;
      if (!r.ready()) joining += (joining.empty() ? "" : ", ") + r.node();
    }
    if (!other_ready) {
      return core::Status::FailedPrecondition(
          "cannot remove '" + node + "' from '" + name +
          "': no other replica holds all the data yet (still pulling: " + joining +
          "); retry once they are ready");
    }
    auto* reps = meta.mutable_replicas();
    reps->erase(std::remove_if(reps->begin(), reps->end(),
                               [&](const proto::Replica& r) { return r.node() == node; }),
                reps->end());
  }
  Change(meta);
  *response.mutable_keygroup() = std::move(meta);
  return core::Status::Ok();
}

void Catalog::Change(proto::KeygroupMeta meta) {
  core_.clock().Now().ToProto(meta.mutable_version());
  Version v = Version::FromProto(meta.version());
  std::string name = meta.name();
  Apply(meta);
  replication_.OweEntryToAll(name, v);
}

void Catalog::OnMetaUpdate(const std::string& from, const proto::MetaUpdate& msg) {
  Apply(msg.meta());
  proto::PeerMessage ack;
  ack.mutable_meta_ack()->set_keygroup(msg.meta().name());
  *ack.mutable_meta_ack()->mutable_version() = msg.meta().version();
  core_.Send(from, std::move(ack));
}

void Catalog::OnCatalogEntries(const proto::CatalogEntries& msg) {
  for (const auto& meta : msg.entries()) Apply(meta);
}

void Catalog::Apply(const proto::KeygroupMeta& incoming) {
  const std::string& self_id = core_.id();
  auto [it, created] = core_.keygroups().try_emplace(incoming.name());
  Keygroup& kg = it->second;
  if (!created && !Supersedes(incoming, kg.meta)) {
    // Not newer; but readiness only ever grows, so take the replicas it marks ready.
    if (MergeReadiness(incoming, kg.meta)) core_.PersistKeygroup(kg);
    return;
  }
  proto::KeygroupMeta meta = incoming;
  if (!created) MergeReadiness(kg.meta, meta);
  core_.clock().Observe(Version::FromProto(meta.version()));
  bool was_replica = kg.replica;
  bool new_incarnation =
      created || Version::FromProto(kg.meta.created()) != Version::FromProto(meta.created());
  std::map<std::string, Version> old_joined;
  for (const auto& r : kg.meta.replicas()) old_joined[r.node()] = Version::FromProto(r.joined());

  kg.meta = std::move(meta);
  kg.replica = !kg.meta.deleted() && IsReplicaIn(kg.meta, self_id);
  bool live = !new_incarnation && !kg.meta.deleted();
  // Items of an old incarnation or a deleted keygroup are gone.
  if (!live && !kg.items.empty()) core_.DropItems(kg);

  const proto::Replica* self = nullptr;
  for (const auto& r : kg.meta.replicas()) {
    if (r.node() == self_id) self = &r;
  }
  auto old_self = old_joined.find(self_id);
  bool joined_again = kg.replica && old_self != old_joined.end() &&
                      old_self->second != Version::FromProto(self->joined());
  bool pull = false;
  if (!kg.replica) {
    kg.ready = false;
  } else if (!was_replica || new_incarnation || joined_again) {
    // Ready at once only as one of the replicas the keygroup was created with, learning of it
    // for the first time; a replica added later, or added again, pulls the data first.
    kg.ready = new_incarnation &&
               Version::FromProto(self->joined()) == Version::FromProto(kg.meta.created());
    pull = !kg.ready;
  }
  KeygroupChange change{kg, live, pull, old_joined};
  for (const auto& subscriber : subscribers_) subscriber(change);
  core_.PersistKeygroup(kg);
  // A ready replica whose readiness the catalog does not show states it (again).
  if (kg.replica && kg.ready && !self->ready()) MarkReady(kg);
}

void Catalog::MarkReady(Keygroup& kg) {
  // Not a new version of the entry (that could undo a concurrent change made from an older copy):
  // the same version with this replica's flag set, which every node merges into what it has.
  for (auto& r : *kg.meta.mutable_replicas()) {
    if (r.node() == core_.id()) r.set_ready(true);
  }
  core_.PersistKeygroup(kg);
  replication_.OweEntryToAll(kg.meta.name(), Version::FromProto(kg.meta.version()));
}

}  // namespace enoki::node
