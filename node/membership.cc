// Membership: the member list, joins and leaves, and its gossip.
#include "node/membership.h"

#include <algorithm>
#include <set>

#include "core/hash.h"
#include "node/validation.h"

namespace enoki::node {
namespace {

// Whether entry `a` wins over entry `b` of the same node: the higher version; at equal versions
// the one that says the node left; then (two configurations that disagree) the greater bytes, so
// that every member picks the same.
bool Newer(const proto::Member& a, const proto::Member& b) {
  if (a.version() != b.version()) return a.version() > b.version();
  if (a.left() != b.left()) return a.left();
  return a.SerializeAsString() > b.SerializeAsString();
}

}  // namespace

uint64_t MembersDigest(const std::map<std::string, proto::Member>& members) {
  uint64_t h = core::kFnv1aOffset;
  for (const auto& [id, m] : members) {
    if (m.version() == 0) continue;  // a configuration's, not gossiped
    h = core::Fnv1aField(id, h);
    h = core::Fnv1aField(m.endpoint(), h);
    h = core::Fnv1aField(m.public_key(), h);
    h = core::Fnv1aField(std::to_string(m.version()) + (m.left() ? "L" : ""), h);
  }
  return h;
}

Membership::Membership(Core& core, PeerTable& peers, Replication& replication)
    : core_(core), peers_(peers), replication_(replication) {}

void Membership::Load(proto::Member&& member) {
  std::string id = member.id();
  members_[id] = std::move(member);
}

void Membership::Start() {
  const NodeOptions& o = core_.options();
  // What the configuration no longer names (a --peer taken out) is no member any more.
  std::set<std::string> configured;
  for (const auto& p : o.peers) configured.insert(p.id());
  for (auto it = members_.begin(); it != members_.end();) {
    if (it->first != o.id && it->second.version() == 0 && !configured.contains(it->first)) {
      core_.batch().EraseMember(it->first);
      it = members_.erase(it);
    } else {
      ++it;
    }
  }
  std::map<std::string, proto::Member> loaded = members_;
  for (const auto& p : o.peers) {
    if (p.id() == o.id) continue;
    auto it = members_.find(p.id());
    // A configured peer is a member of version 0: what the configuration says of it holds until
    // a newer entry (a join or a leave) replaces it.
    bool configured_entry = it != members_.end() && it->second.version() == 0;
    if (it == members_.end() || (configured_entry && (it->second.endpoint() != p.endpoint() ||
                                                      it->second.public_key() != p.public_key()))) {
      proto::Member m;
      m.set_id(p.id());
      m.set_endpoint(p.endpoint());
      m.set_public_key(p.public_key());
      members_[m.id()] = m;
      core_.batch().PutMember(m);
    }
  }
  // Its own entry is a configuration's (version 0) until it joins or announces itself; then a
  // version beats what the others' configurations say of it. A versioned entry's endpoint
  // changes only when announced (--advertise, --join): a node restarted without them keeps
  // the endpoint it announced (its listen endpoint may be every address, which nobody can use).
  auto own = members_.find(o.id);
  bool stored = own != members_.end();
  bool versioned = o.announce || (stored && own->second.version() > 0);
  std::string endpoint =
      stored && own->second.version() > 0 && !o.announce ? own->second.endpoint() : o.endpoint;
  if (!stored || (!own->second.left() &&
                  (own->second.endpoint() != endpoint || own->second.public_key() != o.public_key ||
                   (versioned && own->second.version() == 0)))) {
    proto::Member self;
    self.set_id(o.id);
    self.set_endpoint(endpoint);
    self.set_public_key(o.public_key);
    self.set_version(versioned ? NextVersion(o.id) : 0);
    members_[o.id] = self;
    core_.batch().PutMember(self);
  }
  core_.RequestFlush();
  UpdateDigest();
  if (HasLeft()) {
    core_.Log(core::LogLevel::kWarn, "this node left the cluster: it talks to no other node");
    return;
  }
  for (const auto& [id, m] : members_) {
    if (id != o.id) HandOn(m, !loaded.contains(id));
  }
}

bool Membership::IsPeer(const std::string& node) const {
  auto it = members_.find(node);
  return node != core_.id() && it != members_.end() && !it->second.left();
}

const proto::Member* Membership::Find(const std::string& node) const {
  auto it = members_.find(node);
  return it == members_.end() ? nullptr : &it->second;
}

void Membership::List(proto::MemberList& out, bool configured) const {
  for (const auto& [id, m] : members_) {
    if (configured || m.version() > 0) *out.add_members() = m;
  }
}

core::Status Membership::Join(const proto::Member& member, const net::Caller& caller,
                              proto::MemberList& out) {
  const std::string& id = member.id();
  ENOKI_RETURN_IF_ERROR(ValidateName("node id", id));
  if (HasLeft()) {
    return core::Status::FailedPrecondition("node " + core_.id() +
                                            " left the cluster: join through another member");
  }
  if (id == core_.id()) {
    return core::Status::InvalidArgument("node '" + id + "' cannot join through itself");
  }
  const std::string& endpoint = member.endpoint();
  if (!endpoint.empty() && !endpoint.starts_with("tcp://") && !endpoint.starts_with("ipc://")) {
    return core::Status::InvalidArgument("node '" + id + "' gives endpoint '" + endpoint +
                                         "': an endpoint is tcp://HOST:PORT (or empty: behind "
                                         "NAT, reached over the connections it opens)");
  }
  // With keys, the node is who its connection says: its key is the one it connected with.
  std::string key = caller.name.empty() ? member.public_key() : caller.public_key;
  if (!caller.name.empty() && !member.public_key().empty() && member.public_key() != key) {
    return core::Status::PermissionDenied("node '" + id +
                                          "' names another key than the one it connected with");
  }
  const proto::Member* known = Find(id);
  if (known != nullptr && !known->left() && !known->public_key().empty() &&
      known->public_key() != key) {
    return core::Status::AlreadyExists("node '" + id +
                                       "' is a member with another key: it must leave first "
                                       "(enoki node leave --id " +
                                       id + ")");
  }
  proto::Member m;
  m.set_id(id);
  m.set_endpoint(endpoint);
  m.set_public_key(key);
  m.set_version(NextVersion(id));
  // Not `caller` from here on: applying the entry changes the transport's clients, where a
  // real transport keeps it.
  Apply(m);
  // Every join is owed the catalog: a member that joins again with an empty data directory
  // knows nothing.
  replication_.OweCatalog(id);
  core_.Log(core::LogLevel::kInfo, "node {} joined the cluster{}", id,
            endpoint.empty() ? " (no endpoint: reached over its connections)" : " at " + endpoint);
  List(out, /*configured=*/true);
  return core::Status::Ok();
}

core::Status Membership::Leave(const std::string& node) {
  const proto::Member* known = Find(node);
  if (known == nullptr || node == core_.id()) {
    return core::Status::NotFound("node '" + node + "' is not a member known to " + core_.id());
  }
  if (known->left()) {
    return core::Status::FailedPrecondition("node '" + node + "' left the cluster already");
  }
  proto::Member m = *known;
  m.set_left(true);
  m.set_version(NextVersion(node));
  Apply(m);
  core_.Log(core::LogLevel::kInfo, "node {} left the cluster", node);
  return core::Status::Ok();
}

void Membership::OnJoined(const proto::MemberList& list) { Merge(list); }

void Membership::OnPing(const std::string& from, uint64_t digest) {
  if (digest != digest_) SendList(from);
}

void Membership::OnMembers(const std::string& from, const proto::MemberList& list) {
  if (Merge(list)) SendList(from);
}

bool Membership::Merge(const proto::MemberList& list) {
  std::map<std::string, proto::Member> theirs;
  for (const auto& m : list.members()) {
    if (!ValidateName("node id", m.id()).ok()) continue;
    theirs[m.id()] = m;
    auto it = members_.find(m.id());
    if (it == members_.end() || Newer(m, it->second)) Apply(m);
  }
  return MembersDigest(theirs) != digest_;
}

void Membership::Apply(const proto::Member& member) {
  const std::string& id = member.id();
  bool was_peer = IsPeer(id);
  bool had_left = HasLeft();
  members_[id] = member;
  core_.batch().PutMember(member);
  core_.RequestFlush();
  UpdateDigest();
  if (id == core_.id()) {
    if (member.left() == had_left) return;
    if (member.left()) {
      core_.Log(core::LogLevel::kWarn, "this node left the cluster: it talks to no other node");
    } else {
      core_.Log(core::LogLevel::kInfo, "this node joined the cluster again");
    }
    for (auto [other, m] : members_) {
      if (other == core_.id() || m.left()) continue;
      if (member.left()) {
        // It sends to nobody; what it still owes stays in its outbox (on disk), and its
        // synchronous writes time out unconfirmed rather than pass as replicated.
        peers_.Remove(other);
        m.set_left(true);
        core_.transport().SetPeer(m);
      } else {
        HandOn(m, true);
      }
    }
    return;
  }
  if (!HasLeft()) HandOn(member, !was_peer);
}

void Membership::HandOn(const proto::Member& member, bool owe_catalog) {
  const std::string& id = member.id();
  if (member.left()) {
    peers_.Remove(id);
    replication_.RemovePeer(id);
  } else {
    peers_.Add(id);
    replication_.AddPeer(id, owe_catalog);
  }
  core_.transport().SetPeer(member);
}

uint64_t Membership::NextVersion(const std::string& node) const {
  const proto::Member* known = Find(node);
  uint64_t now = static_cast<uint64_t>(std::max<int64_t>(core_.env().WallMicros(), 1));
  return known == nullptr ? now : std::max(now, known->version() + 1);
}

void Membership::UpdateDigest() {
  digest_ = MembersDigest(members_);
  peers_.SetDigest(digest_);
  auto own = members_.find(core_.id());
  left_ = own != members_.end() && own->second.left();
}

void Membership::SendListTo(const std::string& to) { SendList(to); }

void Membership::SendList(const std::string& to) {
  proto::PeerMessage msg;
  List(*msg.mutable_members(), /*configured=*/false);
  core_.Send(to, std::move(msg));
}

}  // namespace enoki::node
