// Checks of what peers send.
#include "node/peer_checks.h"

#include <set>
#include <string>
#include <string_view>
#include <type_traits>

#include "node/anti_entropy.h"
#include "node/validation.h"

namespace enoki::node {
namespace {

// A field's name is spelled out only when its check fails: a string, or a callable that makes
// one (for names with an index or a node's id in them).
template <typename Field>
std::string Spell(const Field& field) {
  if constexpr (std::is_invocable_v<const Field&>) {
    return field();
  } else {
    return std::string(field);
  }
}

class Checker {
 public:
  explicit Checker(const PeerCheckLimits& limits) : limits_(limits) {}

  core::Status Name(std::string_view field, const std::string& name) const {
    return ValidateName(field, name);
  }
  template <typename Field>
  core::Status Version(const Field& field, const proto::Version& v) const {
    if (v.wall_us() < 0) {
      return core::Status::InvalidArgument(Spell(field) + " has a negative time (" +
                                           std::to_string(v.wall_us()) + " us)");
    }
    if (v.wall_us() > limits_.latest_wall_us) {
      return core::Status::InvalidArgument(
          Spell(field) + " is " + std::to_string((v.wall_us() - limits_.latest_wall_us) / 1000) +
          " ms further ahead of this node's clock than allowed (--max-clock-ahead)");
    }
    // The node only breaks ties between versions: bounded, not parsed.
    if (v.node().size() > kMaxNameBytes) {
      return core::Status::InvalidArgument(Spell(field) + "'s node is longer than " +
                                           std::to_string(kMaxNameBytes) + " characters");
    }
    return core::Status::Ok();
  }
  // Item `index` of a list: key, value and version.
  core::Status Item(int index, const proto::Item& item) const {
    auto field = [index] { return "item " + std::to_string(index); };
    ENOKI_RETURN_IF_ERROR(Prefixed(field, ValidateKey(item.key())));
    ENOKI_RETURN_IF_ERROR(Prefixed(field, ValidateValue(item.value(), limits_.max_value_bytes)));
    return Version([&] { return field() + " version"; }, item.version());
  }
  // Entry `index` of a list: its key and version ("applied 3 version").
  core::Status KeyVersion(std::string_view list, int index, const proto::KeyVersion& kv) const {
    ENOKI_RETURN_IF_ERROR(ValidateKey(kv.key()));
    return Version([&] { return std::string(list) + " " + std::to_string(index) + " version"; },
                   kv.version());
  }
  core::Status Meta(const proto::KeygroupMeta& meta) const {
    ENOKI_RETURN_IF_ERROR(Name("keygroup", meta.name()));
    if (!meta.owner().empty()) ENOKI_RETURN_IF_ERROR(Name("owner", meta.owner()));
    ENOKI_RETURN_IF_ERROR(Version("created", meta.created()));
    ENOKI_RETURN_IF_ERROR(Version("version", meta.version()));
    if (meta.replicas_size() == 0 && !meta.deleted()) {
      return core::Status::InvalidArgument("keygroup '" + meta.name() + "' has no replica");
    }
    std::set<std::string_view> seen;
    for (const auto& r : meta.replicas()) {
      ENOKI_RETURN_IF_ERROR(Name("replica", r.node()));
      if (!seen.insert(r.node()).second) {
        return core::Status::InvalidArgument("replica '" + r.node() + "' is listed twice");
      }
      ENOKI_RETURN_IF_ERROR(
          Version([&] { return "replica '" + r.node() + "' joined"; }, r.joined()));
    }
    return core::Status::Ok();
  }

 private:
  template <typename Field>
  static core::Status Prefixed(const Field& field, core::Status st) {
    if (st.ok()) return st;
    return core::Status(st.code(), Spell(field) + ": " + st.message());
  }
  const PeerCheckLimits& limits_;

 public:
  int64_t latest_wall_us() const { return limits_.latest_wall_us; }
};

// A member list longer than this is refused (every member connects to every other: a real
// cluster of so many nodes is beyond what this design serves).
constexpr int kMaxMembers = 10000;

core::Status Check(const proto::PeerMessage& msg, const Checker& c) {
  switch (msg.body_case()) {
    case proto::PeerMessage::kReplicate: {
      const auto& r = msg.replicate();
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", r.keygroup()));
      ENOKI_RETURN_IF_ERROR(c.Version("incarnation", r.incarnation()));
      ENOKI_RETURN_IF_ERROR(c.Version("meta_version", r.meta_version()));
      for (int i = 0; i < r.items_size(); ++i) ENOKI_RETURN_IF_ERROR(c.Item(i, r.items(i)));
      return core::Status::Ok();
    }
    case proto::PeerMessage::kReplicateAck: {
      const auto& a = msg.replicate_ack();
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", a.keygroup()));
      for (int i = 0; i < a.applied_size(); ++i) {
        ENOKI_RETURN_IF_ERROR(c.KeyVersion("applied", i, a.applied(i)));
      }
      return core::Status::Ok();
    }
    case proto::PeerMessage::kMetaUpdate:
      return c.Meta(msg.meta_update().meta());
    case proto::PeerMessage::kCatalogEntries: {
      const auto& e = msg.catalog_entries();
      if (e.entries_size() > static_cast<int>(kMaxListedEntries)) {
        return core::Status::InvalidArgument("more than " + std::to_string(kMaxListedEntries) +
                                             " entries");
      }
      for (const auto& meta : e.entries()) ENOKI_RETURN_IF_ERROR(c.Meta(meta));
      return core::Status::Ok();
    }
    case proto::PeerMessage::kMetaAck:
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", msg.meta_ack().keygroup()));
      return c.Version("version", msg.meta_ack().version());
    case proto::PeerMessage::kSyncRequest:
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", msg.sync_request().keygroup()));
      return c.Version("incarnation", msg.sync_request().incarnation());
    case proto::PeerMessage::kSyncResponse: {
      const auto& r = msg.sync_response();
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", r.keygroup()));
      ENOKI_RETURN_IF_ERROR(c.Version("incarnation", r.incarnation()));
      for (int i = 0; i < r.items_size(); ++i) ENOKI_RETURN_IF_ERROR(c.Item(i, r.items(i)));
      return core::Status::Ok();
    }
    case proto::PeerMessage::kMembers: {
      const auto& list = msg.members();
      if (list.members_size() > kMaxMembers) {
        return core::Status::InvalidArgument("members: more than " + std::to_string(kMaxMembers));
      }
      for (const auto& m : list.members()) {
        ENOKI_RETURN_IF_ERROR(ValidateName("member", m.id()));
        const std::string& e = m.endpoint();
        if (e.size() > 256 || !(e.empty() || e.starts_with("tcp://") || e.starts_with("ipc://"))) {
          return core::Status::InvalidArgument("member '" + m.id() + "': endpoint is not empty, " +
                                               "tcp://... or ipc://... of at most 256 bytes");
        }
        if (!m.public_key().empty() && m.public_key().size() != 40) {
          return core::Status::InvalidArgument("member '" + m.id() +
                                               "': a public key is 40 characters (Z85)");
        }
        if (static_cast<int64_t>(m.version()) > c.latest_wall_us() ||
            static_cast<int64_t>(m.version()) < 0) {
          return core::Status::InvalidArgument("member '" + m.id() + "': version " +
                                               std::to_string(m.version()) +
                                               " is ahead of this node's clock");
        }
      }
      return core::Status::Ok();
    }
    case proto::PeerMessage::kDigestRequest: {
      const auto& d = msg.digest_request();
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", d.keygroup()));
      ENOKI_RETURN_IF_ERROR(c.Version("incarnation", d.incarnation()));
      if (d.buckets_size() != static_cast<int>(kDigestBuckets) ||
          d.first_bucket() >= kDigestBuckets) {
        return core::Status::InvalidArgument("a digest has " + std::to_string(kDigestBuckets) +
                                             " buckets, not " + std::to_string(d.buckets_size()) +
                                             " from bucket " + std::to_string(d.first_bucket()));
      }
      return core::Status::Ok();
    }
    case proto::PeerMessage::kDigestReply: {
      const auto& r = msg.digest_reply();
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", r.keygroup()));
      ENOKI_RETURN_IF_ERROR(c.Version("incarnation", r.incarnation()));
      uint32_t last = 0;
      for (int i = 0; i < r.buckets_size(); ++i) {
        if (r.buckets(i) >= kDigestBuckets || (i > 0 && r.buckets(i) <= last)) {
          return core::Status::InvalidArgument("bucket " + std::to_string(i) +
                                               " is out of range or out of order");
        }
        last = r.buckets(i);
      }
      if (r.more() && last + 1 >= kDigestBuckets) {
        return core::Status::InvalidArgument("more buckets after the last one");
      }
      for (int i = 0; i < r.items_size(); ++i) {
        ENOKI_RETURN_IF_ERROR(c.KeyVersion("item", i, r.items(i)));
      }
      return core::Status::Ok();
    }
    case proto::PeerMessage::kRepairRequest: {
      const auto& r = msg.repair_request();
      ENOKI_RETURN_IF_ERROR(c.Name("keygroup", r.keygroup()));
      ENOKI_RETURN_IF_ERROR(c.Version("incarnation", r.incarnation()));
      for (const auto& key : r.keys()) ENOKI_RETURN_IF_ERROR(ValidateKey(key));
      return core::Status::Ok();
    }
    case proto::PeerMessage::kCatalogDigest:
      if (!msg.catalog_digest().after().empty()) {
        ENOKI_RETURN_IF_ERROR(c.Name("after", msg.catalog_digest().after()));
      }
      return core::Status::Ok();
    case proto::PeerMessage::kCatalogList: {
      const auto& l = msg.catalog_list();
      if (l.entries_size() > static_cast<int>(kMaxListedEntries)) {
        return core::Status::InvalidArgument("more than " + std::to_string(kMaxListedEntries) +
                                             " entries");
      }
      if (l.more() && l.entries_size() == 0) {
        return core::Status::InvalidArgument("more entries after none");
      }
      const std::string* previous = &l.after();
      for (const auto& e : l.entries()) {
        ENOKI_RETURN_IF_ERROR(c.Name("keygroup", e.name()));
        if (e.name() <= *previous) {
          return core::Status::InvalidArgument(
              "entry '" + e.name() + "' is out of order or not after '" + l.after() + "'");
        }
        previous = &e.name();
        ENOKI_RETURN_IF_ERROR(c.Version("created", e.created()));
        ENOKI_RETURN_IF_ERROR(c.Version("version", e.version()));
      }
      return core::Status::Ok();
    }
    case proto::PeerMessage::kCatalogWant: {
      const auto& w = msg.catalog_want();
      if (w.names_size() > static_cast<int>(kMaxListedEntries)) {
        return core::Status::InvalidArgument("more than " + std::to_string(kMaxListedEntries) +
                                             " names");
      }
      for (const auto& name : w.names()) ENOKI_RETURN_IF_ERROR(c.Name("keygroup", name));
      return core::Status::Ok();
    }
    case proto::PeerMessage::kForwardRequest:   // runs as a client's request, with its checks
    case proto::PeerMessage::kForwardResponse:  // handed to the client that asked
    case proto::PeerMessage::kPing:
    case proto::PeerMessage::kPong:
      return core::Status::Ok();
    case proto::PeerMessage::BODY_NOT_SET:
      return core::Status::InvalidArgument("the message has no body");
  }
  return core::Status::InvalidArgument("the message has a body this node does not know");
}

}  // namespace

core::Status CheckPeerMessage(const proto::PeerMessage& msg, const PeerCheckLimits& limits) {
  core::Status st = Check(msg, Checker(limits));
  if (st.ok()) return st;
  return core::Status(st.code(),
                      proto::PeerMessage::descriptor()->FindFieldByNumber(msg.body_case())->name() +
                          " from '" + msg.from() + "': " + st.message());
}

}  // namespace enoki::node
