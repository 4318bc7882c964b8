// The node's core: keygroups, the write batch and what waits for it, timers.
#include "node/core.h"

#include <algorithm>

#include "core/random.h"

namespace enoki::node {

bool IsReplicaIn(const proto::KeygroupMeta& meta, const std::string& node) {
  return std::any_of(meta.replicas().begin(), meta.replicas().end(),
                     [&](const proto::Replica& r) { return r.node() == node; });
}

const std::string& KeygroupOf(const proto::Request& r) {
  switch (r.op_case()) {
    case proto::Request::kGet:
      return r.get().keygroup();
    case proto::Request::kPut:
      return r.put().keygroup();
    case proto::Request::kDelete:
      return r.delete_().keygroup();
    case proto::Request::kScan:
      return r.scan().keygroup();
    case proto::Request::kAppend:
      return r.append().keygroup();
    default: {
      static const std::string kNone;
      return kNone;
    }
  }
}

proto::Response ResponseTo(const proto::Request& request, const std::string& node) {
  proto::Response response;
  response.set_id(request.id());
  response.set_served_by(node);
  return response;
}

Core::Core(NodeOptions options, core::Env& env, net::Transport& transport, StorageEngine& storage)
    : options_(std::move(options)),
      env_(env),
      transport_(transport),
      storage_(storage),
      clock_(env, options_.id),
      batch_bytes_(std::max<size_t>(options_.max_value_bytes, 256 << 10)),
      next_op_id_(core::StreamRng(options_.seed != 0 ? options_.seed : env.Rng()())() >> 1) {}

Core::~Core() {
  for (auto id : timers_) env_.Cancel(id);
}

core::TimerId Core::After(core::Duration delay, std::function<void()> fn) {
  auto holder = std::make_shared<core::TimerId>(0);
  core::TimerId id = env_.Schedule(delay, [this, holder, fn = std::move(fn)] {
    timers_.erase(*holder);
    RequestFlush();
    fn();
  });
  *holder = id;
  timers_.insert(id);
  return id;
}

void Core::CancelTimer(core::TimerId id) {
  if (id == 0) return;
  env_.Cancel(id);
  timers_.erase(id);
}

Keygroup* Core::FindLive(const std::string& name) {
  auto it = keygroups_.find(name);
  if (it == keygroups_.end() || it->second.meta.deleted()) return nullptr;
  return &it->second;
}

Version Core::WriteLocal(Keygroup& kg, const std::string& key, std::string value, bool deleted) {
  Version v = clock_.Now();
  StoredItem& slot = kg.items[key];
  slot.value = std::move(value);
  slot.version = v;
  slot.deleted = deleted;
  batch_.PutItem(kg.meta.name(), key, slot);
  TraceWrite(kg.meta.name(), key, slot, true);
  return v;
}

bool Core::ApplyRemote(Keygroup& kg, const std::string& key, StoredItem item, bool repair) {
  clock_.Observe(item.version);
  auto [it, inserted] = kg.items.try_emplace(key);
  if (!inserted && !(it->second.version < item.version)) return false;
  it->second = std::move(item);
  batch_.PutItem(kg.meta.name(), key, it->second);
  TraceWrite(kg.meta.name(), key, it->second, false, repair);
  return true;
}

void Core::PersistKeygroup(const Keygroup& kg) {
  batch_.PutKeygroup(KeygroupRecord{kg.meta, kg.ready});
}

void Core::DropItems(Keygroup& kg) {
  kg.items.clear();
  batch_.DropItemsOf(kg.meta.name());
}

void Core::TraceWrite(const std::string& keygroup, const std::string& key, const StoredItem& item,
                      bool origin, bool repair) {
  if (trace_ == nullptr) return;
  proto::WriteTrace* w = traced_writes_.emplace_back().mutable_write();
  w->set_keygroup(keygroup);
  w->set_key(key);
  item.version.ToProto(w->mutable_version());
  w->set_origin(origin);
  w->set_deleted(item.deleted);
  w->set_repair(repair);
}

void Core::Send(const std::string& peer, proto::PeerMessage msg) {
  RequestFlush();
  msg.set_from(options_.id);
  outgoing_.emplace_back(peer, std::move(msg));
}

void Core::Complete(Done& done, proto::Response&& response) {
  RequestFlush();
  completions_.push_back([done = std::move(done), response = std::move(response)]() mutable {
    done(std::move(response));
  });
}

void Core::Fail(Done& done, proto::Response&& response, const core::Status& status) {
  response.set_code(static_cast<proto::Code>(status.code()));
  response.set_error(status.message());
  response.clear_result();
  Complete(done, std::move(response));
}

void Core::RequestFlush() {
  if (flush_requested_) return;
  flush_requested_ = true;
  // Holds the core weakly (the node may be destroyed in this round: a crash), in a capture small
  // enough for std::function to keep without allocating.
  env_.AtEndOfRound([self = std::weak_ptr<Core*>(self_)] {
    std::shared_ptr<Core*> core = self.lock();
    if (!core) return;
    (*core)->flush_requested_ = false;
    (*core)->Flush();
  });
}

void Core::Flush() {
  for (;;) {
    // While a commit fails, the batch is tried again only when its retry is due.
    if (!batch_.empty() && (fault_.ok() || std::exchange(retry_commit_, false))) {
      core::Status st = storage_.Commit(batch_);
      if (st.ok()) {
        Committed();
      } else {
        HoldBatch(st);
      }
    }
    if (completions_.empty() && outgoing_.empty() && !fresh_) break;
    auto completions = std::move(completions_);
    completions_.clear();
    for (auto& fn : completions) fn();
    // Once the completions wrote nothing more, every write is durable: the fresh ones go out
    // first (the writes a function makes one after the other, each awaiting its commit, in one
    // message), then whatever was queued meanwhile, so that no peer hears of an outcome before
    // the writes behind it. While writes are pending, everything waits for the next round. (A
    // held batch is not pending: what came after it read and sends only what is durable.)
    if (!batch_.empty() && fault_.ok()) continue;
    auto queued = std::move(outgoing_);
    outgoing_.clear();
    if (std::exchange(fresh_, false)) send_fresh_();
    for (auto& q : queued) outgoing_.push_back(std::move(q));
    auto outgoing = std::move(outgoing_);
    outgoing_.clear();
    for (auto& [peer, msg] : outgoing) transport_.SendToPeer(peer, msg);
  }
  if (trace_ != nullptr) trace_->Flush();
}

void Core::HoldBatch(const core::Status& error) {
  // Reads and replication must not serve what is not durable: the items go back to what the
  // storage holds (the batch keeps the new ones). A storage that cannot even be read leaves
  // nothing to serve truthfully: the node stops, and a restart reloads what is durable.
  for (const auto& [ik, item] : batch_.items()) {
    auto stored = storage_.LoadItem(ik.first, ik.second);
    if (!stored.ok()) {
      Log(core::LogLevel::kCritical,
          "cannot make writes durable ({}) nor read what is, stopping: {}", error.ToString(),
          stored.status().ToString());
      std::abort();
    }
    auto kg = keygroups_.find(ik.first);
    if (kg == keygroups_.end()) continue;
    if (stored.value()) {
      kg->second.items[ik.second] = std::move(*stored.value());
    } else {
      kg->second.items.erase(ik.second);
    }
  }
  ++metrics_.commit_failures;
  bool first = fault_.ok();
  if (first) {
    // What waited for this batch waits on. What comes while it is held was refused if it would
    // write: it read and sends only what is durable, and goes out at once.
    held_completions_ = std::move(completions_);
    completions_.clear();
    held_outgoing_ = std::move(outgoing_);
    outgoing_.clear();
    held_fresh_ = std::exchange(fresh_, false);
  }
  fault_ =
      core::Status(error.code() == core::Code::kResourceExhausted ? core::Code::kResourceExhausted
                                                                  : core::Code::kUnavailable,
                   "node " + options_.id + " cannot make writes durable (" + error.message() +
                       "); it takes none until it can, and serves reads meanwhile");
  commit_backoff_ =
      first ? options_.retry_interval : std::min(2 * commit_backoff_, options_.max_retry_interval);
  if (first) Log(core::LogLevel::kError, "{}", fault_.message());
  After(commit_backoff_, [this] { retry_commit_ = true; });
}

void Core::Committed() {
  if (!fault_.ok()) {
    // What the held batch wrote goes back into memory (nothing else wrote items meanwhile:
    // writes were refused), then what waited for it goes out before what came later.
    for (const auto& [ik, item] : batch_.items()) {
      auto kg = keygroups_.find(ik.first);
      if (kg == keygroups_.end()) continue;
      StoredItem& slot = kg->second.items[ik.second];
      if (slot.version < item.version) slot = item;
    }
    Log(core::LogLevel::kInfo, "writes are durable again; taking writes");
    fault_ = core::Status::Ok();
    for (auto& fn : completions_) held_completions_.push_back(std::move(fn));
    completions_ = std::move(held_completions_);
    held_completions_.clear();
    for (auto& q : outgoing_) held_outgoing_.push_back(std::move(q));
    outgoing_ = std::move(held_outgoing_);
    held_outgoing_.clear();
    fresh_ = fresh_ || std::exchange(held_fresh_, false);
  }
  batch_.Clear();
  int64_t now = env_.Now().time_since_epoch().count();
  for (auto& r : traced_writes_) {
    r.mutable_write()->set_durable_ns(now);
    trace_->Record(std::move(r));
  }
  traced_writes_.clear();
}

}  // namespace enoki::node
