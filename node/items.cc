// Item operations on a ready replica.
#include "node/items.h"

#include <cstdio>

namespace enoki::node {
namespace {

// Append keys sort in the order the appends were made at each node: zero-padded HLC, then node.
std::string AppendKey(const Version& v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%08x-", static_cast<unsigned long long>(v.wall_us),
                v.logical);
  return buf + v.node;
}

}  // namespace

ItemOps::ItemOps(Core& core, Replication& replication) : core_(core), replication_(replication) {}

void ItemOps::Run(Keygroup& kg, proto::Request&& request, proto::Response&& response, Done done) {
  const NodeOptions& o = core_.options();
  const std::string& name = kg.meta.name();
  bool append_only = kg.meta.mutability() == proto::APPEND_ONLY;
  std::string key;
  std::string value;
  bool deleted = false;

  switch (request.op_case()) {
    case proto::Request::kGet: {
      core::Status st = ValidateKey(request.get().key());
      if (!st.ok()) return core_.Fail(done, std::move(response), st, core_.durable_seq());
      // Answered once what it read is durable: at once, unless a pending commit holds the item.
      Core::Seq read = core_.ReadSeq(name, request.get().key());
      auto it = kg.items.find(request.get().key());
      if (it == kg.items.end() || it->second.deleted) {
        return core_.Fail(done, std::move(response),
                          core::Status::NotFound("key '" + request.get().key() +
                                                 "' not found in keygroup '" + name + "'"),
                          read);
      }
      response.mutable_get()->set_value(it->second.value);
      it->second.version.ToProto(response.mutable_get()->mutable_version());
      return core_.Complete(done, std::move(response), read);
    }
    case proto::Request::kScan: {
      const auto& s = request.scan();
      uint32_t limit = s.limit() == 0 ? o.default_scan_limit : s.limit();
      auto* result = response.mutable_scan();
      size_t bytes = 0;
      for (auto it = kg.items.lower_bound(s.start()); it != kg.items.end(); ++it) {
        if (!s.end().empty() && it->first >= s.end()) break;
        if (it->second.deleted) continue;
        if (static_cast<uint32_t>(result->items_size()) >= limit ||
            (result->items_size() > 0 && bytes + it->second.value.size() > core_.batch_bytes())) {
          result->set_more(true);
          break;
        }
        auto* kv = result->add_items();
        kv->set_key(it->first);
        kv->set_value(it->second.value);
        bytes += it->first.size() + it->second.value.size();
      }
      // What it read: up to the key after the last one it returned (where a next scan starts).
      std::string end =
          result->more() ? result->items(result->items_size() - 1).key() + '\0' : s.end();
      return core_.Complete(done, std::move(response), core_.ReadRangeSeq(name, s.start(), end));
    }
    case proto::Request::kPut: {
      auto& p = *request.mutable_put();
      core::Status st = ValidateKey(p.key());
      if (st.ok()) st = ValidateValue(p.value(), o.max_value_bytes);
      if (!st.ok()) return core_.Fail(done, std::move(response), st);
      if (p.has_expected()) {
        auto it = kg.items.find(p.key());
        Version current =
            it == kg.items.end() || it->second.deleted ? Version{} : it->second.version;
        if (current != Version::FromProto(p.expected())) {
          return core_.Fail(
              done, std::move(response),
              core::Status::FailedPrecondition(
                  "key '" + p.key() + "' in keygroup '" + name + "' is at version " +
                  (current == Version{} ? std::string("(absent)") : current.ToString()) +
                  ", not the expected one"));
        }
      }
      if (append_only) {
        auto it = kg.items.find(p.key());
        if (it != kg.items.end() && !it->second.deleted) {
          return core_.Fail(
              done, std::move(response),
              core::Status::AlreadyExists("keygroup '" + name + "' is append-only and key '" +
                                          p.key() + "' exists"));
        }
      }
      key = std::move(*p.mutable_key());
      value = std::move(*p.mutable_value());
      break;
    }
    case proto::Request::kDelete: {
      core::Status st = ValidateKey(request.delete_().key());
      if (!st.ok()) return core_.Fail(done, std::move(response), st);
      if (append_only) {
        return core_.Fail(done, std::move(response),
                          core::Status::FailedPrecondition(
                              "keygroup '" + name + "' is append-only: items cannot be deleted"));
      }
      key = request.delete_().key();
      deleted = true;
      break;
    }
    case proto::Request::kAppend: {
      if (!append_only) {
        return core_.Fail(
            done, std::move(response),
            core::Status::FailedPrecondition("append needs an append-only keygroup; '" + name +
                                             "' is mutable, use put"));
      }
      core::Status st = ValidateValue(request.append().value(), o.max_value_bytes);
      if (!st.ok()) return core_.Fail(done, std::move(response), st);
      value = std::move(*request.mutable_append()->mutable_value());
      break;
    }
    default:
      return core_.Fail(done, std::move(response), core::Status::Internal("not an item operation"));
  }

  if (!core_.StorageFault().ok())
    return core_.Fail(done, std::move(response), core_.StorageFault());
  if (request.op_case() == proto::Request::kAppend) {
    // The key is derived from the version the write will get, which the clock hands out next.
    Version next = core_.clock().Now();
    key = AppendKey(next);
    core_.clock().Observe(next);
  }
  Version version = core_.WriteLocal(kg, key, std::move(value), deleted);
  replication_.OnLocalWrite(kg, key, version);
  version.ToProto(response.mutable_write()->mutable_version());
  response.mutable_write()->set_key(key);

  if (kg.meta.mode() != proto::SYNC || kg.meta.replicas_size() == 1) {
    return core_.Complete(done, std::move(response));
  }
  replication_.AwaitReplicas(kg, key, version, std::move(response), std::move(done));
}

}  // namespace enoki::node
