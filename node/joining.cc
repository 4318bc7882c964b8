// Joining: pulling a keygroup's data page by page, and serving the pages.
#include "node/joining.h"

#include <algorithm>
#include <vector>

namespace enoki::node {

Joining::Joining(Core& core, const PeerTable& peers, Catalog& catalog)
    : core_(core), peers_(peers), catalog_(catalog) {}

void Joining::OnKeygroupChanged(const KeygroupChange& change) {
  if (!change.kg.replica) {
    auto it = pulls_.find(change.kg.meta.name());
    if (it != pulls_.end()) {
      core_.CancelTimer(it->second.timer);
      it->second.timer = 0;
    }
  } else if (change.pull) {
    Pull(change.kg);
  }
}

void Joining::Pull(Keygroup& kg) {
  PullState& p = pulls_[kg.meta.name()];
  p.first = true;
  p.after.clear();
  p.attempt = 0;
  core_.Log(core::LogLevel::kInfo, "pulling keygroup '{}' from the other replicas", kg.meta.name());
  SendRequest(kg);
}

void Joining::SendRequest(Keygroup& kg) {
  std::string name = kg.meta.name();
  PullState& p = pulls_[name];
  core_.CancelTimer(p.timer);
  auto others = peers_.NearestReplicas(kg.meta);
  if (kg.meta.replicas_size() == 1) {
    // The only replica left (only possible through concurrent catalog changes): what this node
    // has is all there is.
    core_.Log(core::LogLevel::kWarn,
              "keygroup '{}' has no other replica to pull from; serving what it holds", name);
    kg.ready = true;
    core_.PersistKeygroup(kg);
    catalog_.MarkReady(kg);
    return;
  }
  std::vector<std::string> sources;
  for (const auto& r : kg.meta.replicas()) {
    if (r.ready() && std::find(others.begin(), others.end(), r.node()) != others.end()) {
      sources.push_back(r.node());
    }
  }
  std::sort(sources.begin(), sources.end(), [&](const std::string& x, const std::string& y) {
    return std::find(others.begin(), others.end(), x) < std::find(others.begin(), others.end(), y);
  });
  if (sources.empty()) {
    // Every other replica is still pulling too, or none is a configured peer: ask again later.
    if (others.empty() && core_.FirstTime("sync:" + name)) {
      core_.Log(core::LogLevel::kWarn,
                "keygroup '{}': no other replica is a configured peer; cannot pull", name);
    }
    p.timer = core_.After(core_.options().forward_timeout, [this, name] {
      Keygroup* kg = core_.FindLive(name);
      if (kg == nullptr || !kg->replica || kg->ready) return;
      pulls_[name].timer = 0;
      SendRequest(*kg);
    });
    return;
  }
  p.source = sources[p.attempt % sources.size()];
  proto::PeerMessage msg;
  auto* r = msg.mutable_sync_request();
  r->set_keygroup(name);
  *r->mutable_incarnation() = kg.meta.created();
  r->set_after(p.after);
  r->set_first(p.first);
  core_.Send(p.source, std::move(msg));
  p.timer = core_.After(core_.options().forward_timeout, [this, name] {
    Keygroup* kg = core_.FindLive(name);
    if (kg == nullptr || !kg->replica || kg->ready) return;
    PullState& p = pulls_[name];
    p.timer = 0;
    ++p.attempt;
    SendRequest(*kg);
  });
}

void Joining::OnSyncRequest(const std::string& from, const proto::SyncRequest& msg) {
  proto::PeerMessage reply;
  auto* r = reply.mutable_sync_response();
  r->set_keygroup(msg.keygroup());
  *r->mutable_incarnation() = msg.incarnation();
  Keygroup* kg = core_.FindLive(msg.keygroup());
  if (kg == nullptr || !kg->ready ||
      Version::FromProto(kg->meta.created()) != Version::FromProto(msg.incarnation())) {
    r->set_code(proto::UNAVAILABLE);
    return core_.Send(from, std::move(reply));
  }
  auto it = msg.first() ? kg->items.begin() : kg->items.upper_bound(msg.after());
  size_t bytes = 0;
  for (; it != kg->items.end(); ++it) {
    if (r->items_size() > 0 && (bytes >= core_.batch_bytes() ||
                                r->items_size() >= static_cast<int>(kMaxItemsPerMessage))) {
      break;
    }
    auto* item = r->add_items();
    item->set_key(it->first);
    item->set_value(it->second.value);
    it->second.version.ToProto(item->mutable_version());
    item->set_deleted(it->second.deleted);
    bytes += it->first.size() + it->second.value.size() + kItemOverhead;
  }
  r->set_done(it == kg->items.end());
  core_.Send(from, std::move(reply));
}

void Joining::OnSyncResponse(const std::string& from, proto::SyncResponse& msg) {
  Keygroup* kg = core_.FindLive(msg.keygroup());
  if (kg == nullptr || !kg->replica || kg->ready) return;
  auto pull = pulls_.find(msg.keygroup());
  if (pull == pulls_.end()) return;
  PullState& p = pull->second;
  if (p.source != from ||
      Version::FromProto(kg->meta.created()) != Version::FromProto(msg.incarnation())) {
    return;
  }
  core_.CancelTimer(p.timer);
  p.timer = 0;
  if (msg.code() != proto::OK) {
    ++p.attempt;
    std::string name = kg->meta.name();
    p.timer = core_.After(core_.options().retry_interval, [this, name] {
      Keygroup* kg = core_.FindLive(name);
      if (kg != nullptr && kg->replica && !kg->ready) SendRequest(*kg);
    });
    return;
  }
  for (auto& item : *msg.mutable_items()) {
    p.after = item.key();
    core_.ApplyRemote(*kg, item.key(),
                      StoredItem{std::move(*item.mutable_value()),
                                 Version::FromProto(item.version()), item.deleted()});
  }
  p.first = false;
  if (msg.done()) {
    kg->ready = true;
    core_.PersistKeygroup(*kg);
    catalog_.MarkReady(*kg);
    core_.Log(core::LogLevel::kInfo, "keygroup '{}' pulled: {} items, serving reads",
              kg->meta.name(), kg->items.size());
    return;
  }
  SendRequest(*kg);
}

}  // namespace enoki::node
