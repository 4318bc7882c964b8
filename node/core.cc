// The node's core: keygroups, the write batch and what waits for it, timers.
#include "node/core.h"

#include <algorithm>
#include <cassert>

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

Core::Seq Core::LatestSeq() const {
  // While a commit is held, what comes goes out at once (see HoldBatch).
  if (!fault_.ok()) return durable_seq_;
  if (batch_.urgent()) return durable_seq_ + (committing_ ? 2 : 1);
  return committing_ ? durable_seq_ + 1 : durable_seq_;
}

Core::Seq Core::ReadSeq(const std::string& keygroup, const std::string& key) const {
  // While a commit is held, memory holds only what is durable (and writes are refused).
  if (!fault_.ok()) return durable_seq_;
  if (batch_.Touches(keygroup, key)) return LatestSeq();
  if (committing_ && committing_->Touches(keygroup, key)) return durable_seq_ + 1;
  return durable_seq_;
}

Core::Seq Core::ReadRangeSeq(const std::string& keygroup, const std::string& start,
                             const std::string& end) const {
  if (!fault_.ok()) return durable_seq_;
  if (batch_.TouchesRange(keygroup, start, end)) return LatestSeq();
  if (committing_ && committing_->TouchesRange(keygroup, start, end)) return durable_seq_ + 1;
  return durable_seq_;
}

void Core::Send(const std::string& peer, proto::PeerMessage msg, Seq after) {
  RequestFlush();
  msg.set_from(options_.id);
  outgoing_.emplace_back(after == kAllWrites ? LatestSeq() : after, peer, std::move(msg));
}

void Core::Complete(Done& done, proto::Response&& response, Seq after) {
  RequestFlush();
  completions_.push_back(
      {after == kAllWrites ? LatestSeq() : after, std::move(done), std::move(response)});
}

void Core::Fail(Done& done, proto::Response&& response, const core::Status& status, Seq after) {
  response.set_code(static_cast<proto::Code>(status.code()));
  response.set_error(status.message());
  response.clear_result();
  Complete(done, std::move(response), after);
}

void Core::RequestFlush() {
  if (flush_requested_) return;
  flush_requested_ = true;
  // Holds the core weakly (the node may be destroyed in this round: a crash). (std::function keeps
  // only trivially copyable captures in place: this one costs an allocation per round.)
  env_.AtEndOfRound([self = std::weak_ptr<Core*>(self_)] {
    std::shared_ptr<Core*> core = self.lock();
    if (!core) return;
    (*core)->flush_requested_ = false;
    (*core)->Flush();
  });
}

void Core::Flush() {
  assert(!flushing_);  // reached only from the end of a round: taken_ is not being gone through
  flushing_ = true;
  for (;;) {
    if (committed_) OnCommitted(*std::exchange(committed_, std::nullopt));
    // The completions whose writes are durable, in the order they came. They may write, complete
    // and send more: the next turn takes that.
    bool delivered = false;
    taken_.swap(completions_);  // completions_ is now empty, with the room taken_ had
    for (auto& c : taken_) {
      if (c.after > durable_seq_) {
        completions_.push_back(std::move(c));
        continue;
      }
      delivered = true;
      delivering_ = c.after;
      c.done(std::move(c.response));
      delivering_ = kAllWrites;
    }
    taken_.clear();  // keeps its room for the next turn
    if (delivered) continue;
    StartCommit();
    if (committed_) continue;  // the storage committed at once
    // Once every write is in a commit (none is pending behind it), the fresh ones are pushed
    // with that commit (the writes a function makes one after the other, each awaiting its
    // commit, in one message), ahead of what is queued: no peer hears of an outcome before the
    // writes behind it. (Outcomes of earlier commits may overtake them: their writes went out
    // with those commits.)
    if (fresh_ && !batch_.urgent() && fault_.ok()) {
      fresh_ = false;
      auto queued = std::move(outgoing_);
      outgoing_.clear();
      send_fresh_();
      for (auto& q : queued) outgoing_.push_back(std::move(q));
    }
    size_t kept = 0;
    for (size_t i = 0; i < outgoing_.size(); ++i) {
      auto& [after, peer, msg] = outgoing_[i];
      if (after <= durable_seq_) {
        transport_.SendToPeer(peer, std::move(msg));
      } else if (i != kept) {
        outgoing_[kept++] = std::move(outgoing_[i]);
      } else {
        ++kept;
      }
    }
    outgoing_.resize(kept);
    break;
  }
  flushing_ = false;
  if (trace_ != nullptr) trace_->Flush();
}

void Core::StartCommit() {
  if (commit_running_) return;
  if (committing_) {
    // Held: tried again when its retry is due.
    if (!std::exchange(retry_commit_, false)) return;
  } else {
    if (batch_.empty()) return;
    if (!batch_.urgent() && deferred_ != Deferred::kDue) {
      if (deferred_ == Deferred::kNone) {
        deferred_ = Deferred::kWaiting;
        After(kDeferredCommitDelay, [this] { deferred_ = Deferred::kDue; });
      }
      return;
    }
    if (deferred_ == Deferred::kDue) deferred_ = Deferred::kNone;
    committing_ = std::make_shared<WriteBatch>(std::move(batch_));
    batch_.Clear();
    committing_traced_ = std::move(traced_writes_);
    traced_writes_.clear();
  }
  commit_running_ = true;
  commit_started_ = env_.Now();
  storage_.StartCommit(committing_, [self = std::weak_ptr<Core*>(self_)](const core::Status& st) {
    std::shared_ptr<Core*> core = self.lock();
    if (!core) return;  // the node is gone (a crash); what waited for the commit with it
    (*core)->committed_ = st;
    if (!(*core)->flushing_) (*core)->RequestFlush();
  });
}

void Core::OnCommitted(const core::Status& status) {
  commit_running_ = false;
  if (status.ok()) {
    Committed();
  } else {
    HoldBatch(status);
  }
}

void Core::HoldBatch(const core::Status& error) {
  bool first = fault_.ok();
  if (first) {
    // The pending batch's writes depend on what failed (they were made over it): they join it,
    // and what waited for either waits for the one retried commit.
    committing_->Absorb(std::move(batch_));
    batch_.Clear();
    for (auto& r : traced_writes_) committing_traced_.push_back(std::move(r));
    traced_writes_.clear();
  }
  // Reads and replication must not serve what is not durable: the items go back to what the
  // storage holds (the batch keeps the new ones). A storage that cannot even be read leaves
  // nothing to serve truthfully: the node stops, and a restart reloads what is durable.
  for (const auto& [ik, item] : committing_->items()) {
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
  if (first) {
    // What waited for the pending batch now waits for the held one; what comes while it is held
    // was refused if it would write, read only what is durable, and goes out at once.
    for (auto& c : completions_) c.after = std::min(c.after, durable_seq_ + 1);
    for (auto& o : outgoing_) std::get<0>(o) = std::min(std::get<0>(o), durable_seq_ + 1);
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
    // writes were refused).
    for (const auto& [ik, item] : committing_->items()) {
      auto kg = keygroups_.find(ik.first);
      if (kg == keygroups_.end()) continue;
      StoredItem& slot = kg->second.items[ik.second];
      if (slot.version < item.version) slot = item;
    }
    Log(core::LogLevel::kInfo, "writes are durable again; taking writes");
    fault_ = core::Status::Ok();
  }
  committing_.reset();
  ++durable_seq_;
  int64_t now = env_.Now().time_since_epoch().count();
  for (auto& r : committing_traced_) {
    r.mutable_write()->set_durable_ns(now);
    trace_->Record(std::move(r));
  }
  committing_traced_.clear();
}

}  // namespace enoki::node
