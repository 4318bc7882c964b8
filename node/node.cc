// The Enoki node: request handling, catalog, replication, forwarding and joining.
#include "node/node.h"

#include "core/random.h"

#include <algorithm>
#include <cstdio>

namespace enoki::node {
namespace {

// Retry rounds look at no more outbox entries than this per peer, so a long backlog costs a
// bounded amount of work per tick.
constexpr size_t kMaxScanPerRound = 8192;
constexpr size_t kMaxItemsPerMessage = 512;
// Per-item overhead counted against batch_bytes_ besides key and value.
constexpr size_t kItemOverhead = 48;

proto::Code ToWire(core::Code code) { return static_cast<proto::Code>(code); }

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

// Append keys sort in the order the appends were made at each node: zero-padded HLC, then node.
std::string AppendKey(const Version& v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%08x-", static_cast<unsigned long long>(v.wall_us),
                v.logical);
  return buf + v.node;
}

// Whether catalog entry `b` supersedes `a`: a newer incarnation wins; within one incarnation a
// deletion is final; otherwise the newer version wins.
bool Supersedes(const proto::KeygroupMeta& b, const proto::KeygroupMeta& a) {
  Version ac = Version::FromProto(a.created()), bc = Version::FromProto(b.created());
  if (ac != bc) return ac < bc;
  if (a.deleted() != b.deleted()) return b.deleted();
  return Version::FromProto(a.version()) < Version::FromProto(b.version());
}

}  // namespace

size_t MaxMessageBytes(size_t max_value_bytes) { return 2 * max_value_bytes + (1 << 20); }

Node::Node(NodeOptions options, core::Env& env, net::Transport& transport, StorageEngine& storage)
    : options_(std::move(options)),
      env_(env),
      transport_(transport),
      storage_(storage),
      clock_(env, options_.id),
      batch_bytes_(std::max<size_t>(options_.max_value_bytes, 256 << 10)),
      next_op_id_(core::StreamRng(options_.seed != 0 ? options_.seed : env.Rng()())() >> 1) {
  for (const auto& p : options_.peers) {
    if (p != options_.id) peers_[p].backoff = options_.retry_interval;
  }
}

Node::~Node() {
  for (auto id : timers_) env_.Cancel(id);
}

core::TimerId Node::After(core::Duration delay, std::function<void()> fn) {
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

void Node::CancelTimer(core::TimerId id) {
  if (id == 0) return;
  env_.Cancel(id);
  timers_.erase(id);
}

core::Status Node::Start() {
  LoadVisitor visitor;
  visitor.keygroup = [this](KeygroupRecord&& rec) {
    Keygroup& kg = keygroups_[rec.meta.name()];
    kg.meta = std::move(rec.meta);
    kg.replica = !kg.meta.deleted() && IsReplicaIn(kg.meta, options_.id);
    kg.ready = kg.replica && rec.ready;
    clock_.Observe(Version::FromProto(kg.meta.version()));
  };
  visitor.item = [this](const std::string& keygroup, const std::string& key, StoredItem&& item) {
    clock_.Observe(item.version);
    keygroups_[keygroup].items[key] = std::move(item);  // each key is loaded once
  };
  visitor.outbox = [this](OutboxRecord&& rec) {
    auto it = peers_.find(rec.peer);
    if (it == peers_.end()) {
      // Kept on disk (a restart with the peer configured again delivers it), not retried now.
      if (unknown_peers_warned_.insert(rec.peer).second) {
        Log(core::LogLevel::kWarn,
            "the outbox holds entries for '{}', which is not a configured peer", rec.peer);
      }
      return;
    }
    it->second.outbox[{rec.keygroup, rec.key}] = OutboxEntry{std::move(rec.version), {}};
  };
  visitor.function = [this](const std::string& name, std::string&& bytes) {
    proto::FunctionSpec spec;
    if (spec.ParseFromString(bytes)) {
      saved_functions_.push_back(std::move(spec));
    } else {
      Log(core::LogLevel::kWarn, "stored function '{}' does not parse; skipped", name);
    }
  };
  ENOKI_RETURN_IF_ERROR(storage_.Load(visitor));
  for (auto& [name, kg] : keygroups_) {
    if (kg.replica && !kg.ready) StartSync(kg);
    DropDrainedItems(kg);
  }
  After(options_.retry_interval, [this] { OnRetryTick(); });
  After(std::chrono::milliseconds(0), [this] { OnPingTick(); });
  RequestFlush();  // what loading queued
  Log(core::LogLevel::kInfo, "started: {} keygroups, {} outbox entries", keygroups_.size(),
      OutboxSize());
  return core::Status::Ok();
}

size_t Node::OutboxSize() const {
  size_t n = 0;
  for (const auto& [id, p] : peers_) n += p.outbox.size();
  return n;
}

bool Node::IsReadyReplica(const std::string& keygroup) const {
  auto it = keygroups_.find(keygroup);
  return it != keygroups_.end() && it->second.ready;
}

void Node::SaveFunction(const std::string& name, const proto::FunctionSpec* spec) {
  RequestFlush();
  if (spec == nullptr) {
    batch_.EraseFunction(name);
  } else {
    batch_.PutFunction(name, spec->SerializeAsString());
  }
}

// ---- Flush -----------------------------------------------------------------------------------

void Node::RequestFlush() {
  if (flush_requested_) return;
  flush_requested_ = true;
  // Holds the node weakly (it may be destroyed in this round: a crash), in a capture small
  // enough for std::function to keep without allocating.
  env_.AtEndOfRound([self = std::weak_ptr<Node*>(self_)] {
    std::shared_ptr<Node*> node = self.lock();
    if (!node) return;
    (*node)->flush_requested_ = false;
    (*node)->Flush();
  });
}

void Node::Flush() {
  while (!batch_.empty() || !completions_.empty() || !outgoing_.empty() || !fresh_peers_.empty()) {
    if (!batch_.empty()) {
      core::Status st = storage_.Commit(batch_);
      if (!st.ok()) {
        // Nothing in the batch may be acknowledged; the durable state is consistent, so the
        // safe course is to stop and let a restart reload it.
        Log(core::LogLevel::kCritical, "cannot make writes durable, stopping: {}", st.ToString());
        std::abort();
      }
      batch_.Clear();
      int64_t now = env_.Now().time_since_epoch().count();
      for (auto& r : traced_writes_) {
        r.mutable_write()->set_durable_ns(now);
        trace_->Record(std::move(r));
      }
      traced_writes_.clear();
    }
    auto completions = std::move(completions_);
    completions_.clear();
    for (auto& fn : completions) fn();
    // Once the completions wrote nothing more, every write is durable: the fresh ones go out
    // first (the writes a function makes one after the other, each awaiting its commit, in one
    // message), then whatever was queued meanwhile, so that no peer hears of an outcome before
    // the writes behind it. While writes are pending, everything waits for the next round.
    if (!batch_.empty()) continue;
    auto queued = std::move(outgoing_);
    outgoing_.clear();
    for (const auto& peer_id : std::exchange(fresh_peers_, {})) {
      SendEntries(peer_id, std::exchange(peers_.at(peer_id).fresh, {}));
    }
    for (auto& q : queued) outgoing_.push_back(std::move(q));
    auto outgoing = std::move(outgoing_);
    outgoing_.clear();
    for (auto& [peer, msg] : outgoing) transport_.SendToPeer(peer, msg);
  }
  if (trace_ != nullptr) trace_->Flush();
}

void Node::TraceWrite(const std::string& keygroup, const std::string& key, const StoredItem& item,
                      bool origin) {
  if (trace_ == nullptr) return;
  proto::WriteTrace* w = traced_writes_.emplace_back().mutable_write();
  w->set_keygroup(keygroup);
  w->set_key(key);
  item.version.ToProto(w->mutable_version());
  w->set_origin(origin);
  w->set_deleted(item.deleted);
}

void Node::Send(const std::string& peer, proto::PeerMessage msg) {
  RequestFlush();
  msg.set_from(options_.id);
  outgoing_.emplace_back(peer, std::move(msg));
}

void Node::Complete(Done& done, proto::Response&& response) {
  RequestFlush();
  completions_.push_back([done = std::move(done), response = std::move(response)]() mutable {
    done(std::move(response));
  });
}

void Node::Fail(Done& done, proto::Response&& response, const core::Status& status) {
  response.set_code(ToWire(status.code()));
  response.set_error(status.message());
  response.clear_result();
  Complete(done, std::move(response));
}

// ---- Requests --------------------------------------------------------------------------------

void Node::OnClientRequest(const net::ClientId& client, proto::Request&& request) {
  RequestFlush();
  Dispatch(std::move(request), /*forwarded=*/false, [this, client](proto::Response&& response) {
    transport_.ReplyToClient(client, response);
  });
}

void Node::Execute(proto::Request request, Done done) {
  RequestFlush();
  Dispatch(std::move(request), /*forwarded=*/false, std::move(done));
}

Node::Keygroup* Node::FindLive(const std::string& name) {
  auto it = keygroups_.find(name);
  if (it == keygroups_.end() || it->second.meta.deleted()) return nullptr;
  return &it->second;
}

void Node::Dispatch(proto::Request&& request, bool forwarded, Done done) {
  proto::Response response;
  response.set_id(request.id());
  response.set_served_by(options_.id);
  switch (request.op_case()) {
    case proto::Request::kGet:
    case proto::Request::kPut:
    case proto::Request::kDelete:
    case proto::Request::kScan:
    case proto::Request::kAppend: {
      const std::string& name = KeygroupOf(request);
      core::Status st = ValidateName("keygroup", name);
      if (!st.ok()) return Fail(done, std::move(response), st);
      Keygroup* kg = FindLive(name);
      if (kg == nullptr && forwarded && !keygroups_.contains(name)) {
        // The sender knows the keygroup and this node not yet: let it try another replica.
        return Fail(done, std::move(response),
                    core::Status::Unavailable("node " + options_.id + " does not know keygroup '" +
                                              name + "' yet"));
      }
      if (kg == nullptr) {
        return Fail(done, std::move(response),
                    core::Status::NotFound("keygroup '" + name + "' does not exist"));
      }
      if (kg->ready) return RunItemOp(*kg, std::move(request), std::move(done));
      if (forwarded) {
        return Fail(done, std::move(response),
                    core::Status::Unavailable("node " + options_.id +
                                              " holds no ready replica of '" + name + "'"));
      }
      return Forward(std::move(request), std::move(done));
    }
    case proto::Request::kCreateKeygroup:
      CreateKeygroup(request.create_keygroup(), response);
      return Complete(done, std::move(response));
    case proto::Request::kDeleteKeygroup: {
      const std::string& name = request.delete_keygroup().name();
      Keygroup* kg = FindLive(name);
      if (kg == nullptr) {
        return Fail(done, std::move(response),
                    core::Status::NotFound("keygroup '" + name + "' does not exist"));
      }
      proto::KeygroupMeta meta = kg->meta;
      meta.set_deleted(true);
      ChangeMeta(std::move(meta));
      return Complete(done, std::move(response));
    }
    case proto::Request::kKeygroupInfo: {
      Keygroup* kg = FindLive(request.keygroup_info().name());
      if (kg == nullptr) {
        return Fail(done, std::move(response),
                    core::Status::NotFound("keygroup '" + request.keygroup_info().name() +
                                           "' does not exist"));
      }
      *response.mutable_keygroup() = kg->meta;
      return Complete(done, std::move(response));
    }
    case proto::Request::kAddReplica:
    case proto::Request::kRemoveReplica: {
      bool add = request.op_case() == proto::Request::kAddReplica;
      const auto& kg = add ? request.add_replica().keygroup() : request.remove_replica().keygroup();
      const auto& node = add ? request.add_replica().node() : request.remove_replica().node();
      core::Status st = ChangeReplicas(kg, node, add, response);
      if (!st.ok()) return Fail(done, std::move(response), st);
      return Complete(done, std::move(response));
    }
    case proto::Request::kDeployFunction:
    case proto::Request::kDeleteFunction:
    case proto::Request::kListFunctions:
    case proto::Request::kInvoke:
    case proto::Request::kFunctionLogs:
      if (function_handler_) return function_handler_(std::move(request), std::move(done));
      return Fail(done, std::move(response),
                  core::Status::InvalidArgument("node " + options_.id + " runs no function host"));
    case proto::Request::kSetLink:
      return Fail(done, std::move(response),
                  core::Status::InvalidArgument("set_link is served by a real node's transport, "
                                                "not by node " +
                                                options_.id));
    case proto::Request::OP_NOT_SET:
      break;
  }
  Fail(done, std::move(response), core::Status::InvalidArgument("request names no operation"));
}

void Node::RunItemOp(Keygroup& kg, proto::Request&& request, Done done) {
  proto::Response response;
  response.set_id(request.id());
  response.set_served_by(options_.id);
  const std::string& name = kg.meta.name();
  bool append_only = kg.meta.mutability() == proto::APPEND_ONLY;
  std::string key;
  std::string value;
  bool deleted = false;

  switch (request.op_case()) {
    case proto::Request::kGet: {
      core::Status st = ValidateKey(request.get().key());
      if (!st.ok()) return Fail(done, std::move(response), st);
      auto it = kg.items.find(request.get().key());
      if (it == kg.items.end() || it->second.deleted) {
        return Fail(done, std::move(response),
                    core::Status::NotFound("key '" + request.get().key() +
                                           "' not found in keygroup '" + name + "'"));
      }
      response.mutable_get()->set_value(it->second.value);
      it->second.version.ToProto(response.mutable_get()->mutable_version());
      return Complete(done, std::move(response));
    }
    case proto::Request::kScan: {
      const auto& s = request.scan();
      uint32_t limit = s.limit() == 0 ? options_.default_scan_limit : s.limit();
      auto* result = response.mutable_scan();
      size_t bytes = 0;
      for (auto it = kg.items.lower_bound(s.start()); it != kg.items.end(); ++it) {
        if (!s.end().empty() && it->first >= s.end()) break;
        if (it->second.deleted) continue;
        if (static_cast<uint32_t>(result->items_size()) >= limit ||
            (result->items_size() > 0 && bytes + it->second.value.size() > batch_bytes_)) {
          result->set_more(true);
          break;
        }
        auto* kv = result->add_items();
        kv->set_key(it->first);
        kv->set_value(it->second.value);
        bytes += it->first.size() + it->second.value.size();
      }
      return Complete(done, std::move(response));
    }
    case proto::Request::kPut: {
      auto& p = *request.mutable_put();
      core::Status st = ValidateKey(p.key());
      if (st.ok()) st = ValidateValue(p.value(), options_.max_value_bytes);
      if (!st.ok()) return Fail(done, std::move(response), st);
      if (p.has_expected()) {
        auto it = kg.items.find(p.key());
        Version current =
            it == kg.items.end() || it->second.deleted ? Version{} : it->second.version;
        if (current != Version::FromProto(p.expected())) {
          return Fail(done, std::move(response),
                      core::Status::FailedPrecondition(
                          "key '" + p.key() + "' in keygroup '" + name + "' is at version " +
                          (current == Version{} ? std::string("(absent)") : current.ToString()) +
                          ", not the expected one"));
        }
      }
      if (append_only) {
        auto it = kg.items.find(p.key());
        if (it != kg.items.end() && !it->second.deleted) {
          return Fail(
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
      if (!st.ok()) return Fail(done, std::move(response), st);
      if (append_only) {
        return Fail(done, std::move(response),
                    core::Status::FailedPrecondition("keygroup '" + name +
                                                     "' is append-only: items cannot be deleted"));
      }
      key = request.delete_().key();
      deleted = true;
      break;
    }
    case proto::Request::kAppend: {
      if (!append_only) {
        return Fail(done, std::move(response),
                    core::Status::FailedPrecondition("append needs an append-only keygroup; '" +
                                                     name + "' is mutable, use put"));
      }
      core::Status st = ValidateValue(request.append().value(), options_.max_value_bytes);
      if (!st.ok()) return Fail(done, std::move(response), st);
      value = std::move(*request.mutable_append()->mutable_value());
      break;
    }
    default:
      return Fail(done, std::move(response), core::Status::Internal("not an item operation"));
  }

  if (request.op_case() == proto::Request::kAppend) {
    // The key is derived from the version the write will get, which the clock hands out next.
    Version next = clock_.Now();
    key = AppendKey(next);
    clock_.Observe(next);
  }
  Version version = WriteLocal(kg, key, std::move(value), deleted);
  version.ToProto(response.mutable_write()->mutable_version());
  response.mutable_write()->set_key(key);

  if (kg.meta.mode() != proto::SYNC || kg.meta.replicas_size() == 1) {
    return Complete(done, std::move(response));
  }
  uint64_t op = next_op_id_++;
  SyncWrite& w = sync_writes_[op];
  w.keygroup = name;
  w.key = key;
  w.version = version;
  for (const auto& r : kg.meta.replicas()) {
    if (r.node() != options_.id) w.waiting.insert(r.node());
  }
  w.response = std::move(response);
  w.done = std::move(done);
  w.timer = After(options_.sync_write_timeout, [this, op] {
    auto it = sync_writes_.find(op);
    if (it == sync_writes_.end()) return;
    SyncWrite w = std::move(it->second);
    sync_writes_.erase(it);
    std::string names;
    for (const auto& n : w.waiting) names += (names.empty() ? "" : ", ") + n;
    Fail(w.done, std::move(w.response),
         core::Status::DeadlineExceeded(
             "write to '" + w.keygroup + "' is durable at " + options_.id +
             " and keeps replicating, but replicas " + names + " did not confirm within " +
             std::to_string(static_cast<int64_t>(core::ToMillis(options_.sync_write_timeout))) +
             " ms"));
  });
}

void Node::CreateKeygroup(const proto::CreateKeygroupRequest& r, proto::Response& response) {
  auto fail = [&](const core::Status& st) {
    response.set_code(ToWire(st.code()));
    response.set_error(st.message());
  };
  core::Status st = ValidateName("keygroup", r.name());
  if (!st.ok()) return fail(st);
  if (FindLive(r.name()) != nullptr) {
    return fail(core::Status::AlreadyExists("keygroup '" + r.name() + "' exists"));
  }
  std::vector<std::string> replicas(r.replicas().begin(), r.replicas().end());
  if (replicas.empty()) replicas.push_back(options_.id);
  std::set<std::string> seen;
  for (const auto& n : replicas) {
    if (n != options_.id && !peers_.contains(n)) {
      return fail(core::Status::InvalidArgument("replica '" + n + "' is not a node known to " +
                                                options_.id));
    }
    if (!seen.insert(n).second) {
      return fail(core::Status::InvalidArgument("replica '" + n + "' is listed twice"));
    }
  }
  Version now = clock_.Now();
  proto::KeygroupMeta meta;
  meta.set_name(r.name());
  meta.set_mutability(r.mutability());
  meta.set_mode(r.mode());
  now.ToProto(meta.mutable_created());
  for (const auto& n : replicas) {
    auto* rep = meta.add_replicas();
    rep->set_node(n);
    now.ToProto(rep->mutable_joined());
    rep->set_ready(true);
  }
  ChangeMeta(meta);
  *response.mutable_keygroup() = std::move(meta);
}

core::Status Node::ChangeReplicas(const std::string& name, const std::string& node, bool add,
                                  proto::Response& response) {
  Keygroup* kg = FindLive(name);
  if (kg == nullptr) return core::Status::NotFound("keygroup '" + name + "' does not exist");
  proto::KeygroupMeta meta = kg->meta;
  if (add) {
    if (node != options_.id && !peers_.contains(node)) {
      return core::Status::InvalidArgument("node '" + node + "' is not known to " + options_.id);
    }
    if (IsReplicaIn(meta, node)) {
      return core::Status::AlreadyExists("node '" + node + "' already holds a replica of '" + name +
                                         "'");
    }
    auto* rep = meta.add_replicas();
    rep->set_node(node);
    clock_.Now().ToProto(rep->mutable_joined());
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
  ChangeMeta(meta);
  *response.mutable_keygroup() = std::move(meta);
  return core::Status::Ok();
}

// ---- Forwarding ------------------------------------------------------------------------------

std::vector<std::string> Node::NearestReplicas(const proto::KeygroupMeta& meta) {
  struct Candidate {
    bool live;
    double rtt;
    std::string id;
  };
  std::vector<Candidate> c;
  auto now = env_.Now();
  for (const auto& r : meta.replicas()) {
    if (r.node() == options_.id) continue;
    auto it = peers_.find(r.node());
    if (it == peers_.end()) continue;
    bool live = it->second.last_heard != core::TimePoint{} &&
                now - it->second.last_heard < 4 * options_.ping_interval + options_.retry_interval;
    c.push_back({live, it->second.rtt_ms < 0 ? 1e9 : it->second.rtt_ms, r.node()});
  }
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(b.live, a.rtt, a.id) < std::tie(a.live, b.rtt, b.id);
  });
  std::vector<std::string> out;
  for (auto& x : c) out.push_back(std::move(x.id));
  return out;
}

void Node::Forward(proto::Request&& request, Done done) {
  const Keygroup& kg = keygroups_.at(KeygroupOf(request));
  uint64_t id = next_op_id_++;
  PendingForward& f = forwards_[id];
  f.candidates = NearestReplicas(kg.meta);
  // A write to a synchronous keygroup may take the replica its own sync timeout to answer.
  f.timeout = options_.forward_timeout;
  if (kg.meta.mode() == proto::SYNC && request.op_case() != proto::Request::kGet &&
      request.op_case() != proto::Request::kScan) {
    f.timeout += options_.sync_write_timeout;
  }
  f.request = std::move(request);
  f.done = std::move(done);
  TryNextForward(id);
}

void Node::ExecuteAt(const std::string& target, proto::Request request, core::Duration timeout,
                     Done done) {
  RequestFlush();
  if (target == options_.id) return Execute(std::move(request), std::move(done));
  if (!peers_.contains(target)) {
    proto::Response response;
    response.set_id(request.id());
    response.set_served_by(options_.id);
    return Fail(
        done, std::move(response),
        core::Status::InvalidArgument("node '" + target + "' is not a peer of " + options_.id));
  }
  uint64_t id = next_op_id_++;
  PendingForward& f = forwards_[id];
  f.candidates = {target};
  f.timeout = timeout;
  f.request = std::move(request);
  f.done = std::move(done);
  TryNextForward(id);
}

void Node::TryNextForward(uint64_t id) {
  auto it = forwards_.find(id);
  PendingForward& f = it->second;
  if (f.next >= f.candidates.size()) {
    PendingForward failed = std::move(f);
    forwards_.erase(it);
    std::string tried;
    for (const auto& s : failed.failures) tried += (tried.empty() ? "" : "; ") + s;
    proto::Response response;
    response.set_id(failed.request.id());
    response.set_served_by(options_.id);
    std::string what =
        KeygroupOf(failed.request).empty()
            ? "node " + failed.candidates.front() + " did not serve the request"
            : "no replica of '" + KeygroupOf(failed.request) + "' could serve the request";
    return Fail(failed.done, std::move(response),
                core::Status::Unavailable(what + (tried.empty() ? "" : " (" + tried + ")")));
  }
  proto::PeerMessage msg;
  msg.mutable_forward_request()->set_id(id);
  *msg.mutable_forward_request()->mutable_request() = f.request;
  Send(f.candidates[f.next], std::move(msg));
  f.timer = After(f.timeout, [this, id] {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;
    it->second.failures.push_back(it->second.candidates[it->second.next] + ": no answer");
    ++it->second.next;
    TryNextForward(id);
  });
}

// ---- Store -----------------------------------------------------------------------------------

Version Node::WriteLocal(Keygroup& kg, const std::string& key, std::string value, bool deleted) {
  Version v = clock_.Now();
  StoredItem& slot = kg.items[key];
  slot.value = std::move(value);
  slot.version = v;
  slot.deleted = deleted;
  batch_.PutItem(kg.meta.name(), key, slot);
  TraceWrite(kg.meta.name(), key, slot, true);
  for (const auto& r : kg.meta.replicas()) {
    if (r.node() != options_.id) MarkDirty(r.node(), kg.meta.name(), key, v, true);
  }
  return v;
}

bool Node::ApplyRemote(Keygroup& kg, const std::string& key, StoredItem item) {
  clock_.Observe(item.version);
  auto [it, inserted] = kg.items.try_emplace(key);
  if (!inserted && !(it->second.version < item.version)) return false;
  it->second = std::move(item);
  batch_.PutItem(kg.meta.name(), key, it->second);
  TraceWrite(kg.meta.name(), key, it->second, false);
  return true;
}

void Node::PersistKeygroup(const Keygroup& kg) {
  batch_.PutKeygroup(KeygroupRecord{kg.meta, kg.ready});
}

void Node::DropItems(Keygroup& kg) {
  kg.items.clear();
  batch_.DropItemsOf(kg.meta.name());
}

void Node::ChangeMeta(proto::KeygroupMeta meta) {
  clock_.Now().ToProto(meta.mutable_version());
  Version v = Version::FromProto(meta.version());
  std::string name = meta.name();
  ApplyMeta(meta);
  for (const auto& [peer, p] : peers_) MarkDirty(peer, name, "", v, true);
}

void Node::ApplyMeta(const proto::KeygroupMeta& incoming) {
  auto [it, created] = keygroups_.try_emplace(incoming.name());
  Keygroup& kg = it->second;
  if (!created && !Supersedes(incoming, kg.meta)) {
    // Not newer; but readiness only ever grows, so take the replicas it marks ready.
    if (MergeReadiness(incoming, kg.meta)) PersistKeygroup(kg);
    return;
  }
  proto::KeygroupMeta meta = incoming;
  if (!created) MergeReadiness(kg.meta, meta);
  clock_.Observe(Version::FromProto(meta.version()));
  bool was_replica = kg.replica;
  bool new_incarnation =
      created || Version::FromProto(kg.meta.created()) != Version::FromProto(meta.created());
  std::map<std::string, Version> old_joined;
  for (const auto& r : kg.meta.replicas()) old_joined[r.node()] = Version::FromProto(r.joined());

  kg.meta = std::move(meta);
  kg.replica = !kg.meta.deleted() && IsReplicaIn(kg.meta, options_.id);
  const std::string& name = kg.meta.name();
  bool live = !new_incarnation && !kg.meta.deleted();

  // Forget what no longer belongs here: items of an old incarnation or a deleted keygroup, and
  // outbox entries for peers that are no longer replicas. A replica that was removed keeps its
  // items and its entries for the remaining replicas until they have them (DropDrainedItems).
  if (!live && !kg.items.empty()) DropItems(kg);
  for (auto& [peer_id, peer] : peers_) {
    if (live && IsReplicaIn(kg.meta, peer_id)) continue;
    auto lo = peer.outbox.lower_bound({name, std::string(1, '\0')});
    while (lo != peer.outbox.end() && lo->first.first == name) {
      auto next = std::next(lo);
      if (!lo->first.second.empty()) EraseOutbox(peer_id, lo);
      lo = next;
    }
  }
  // Synchronous writes stop waiting for nodes that are no longer replicas.
  for (auto w = sync_writes_.begin(); w != sync_writes_.end();) {
    if (w->second.keygroup == name) {
      std::erase_if(w->second.waiting,
                    [&](const std::string& n) { return !live || !IsReplicaIn(kg.meta, n); });
      if (w->second.waiting.empty()) {
        CancelTimer(w->second.timer);
        Complete(w->second.done, std::move(w->second.response));
        w = sync_writes_.erase(w);
        continue;
      }
    }
    ++w;
  }

  const proto::Replica* self = nullptr;
  for (const auto& r : kg.meta.replicas()) {
    if (r.node() == options_.id) self = &r;
  }
  auto old_self = old_joined.find(options_.id);
  bool joined_again = kg.replica && old_self != old_joined.end() &&
                      old_self->second != Version::FromProto(self->joined());
  if (!kg.replica) {
    kg.ready = false;
    CancelTimer(kg.sync_timer);
    kg.sync_timer = 0;
  } else if (!was_replica || new_incarnation || joined_again) {
    // Ready at once only as one of the replicas the keygroup was created with, learning of it
    // for the first time; a replica added later, or added again, pulls the data first.
    kg.ready = new_incarnation &&
               Version::FromProto(self->joined()) == Version::FromProto(kg.meta.created());
    if (!kg.ready) StartSync(kg);
  }
  // Whoever holds items (a replica, or a removed one still handing them on) pushes all of them to
  // replicas that joined since it last looked, or joined again, so that a write made before it
  // learned of them is not missed by their pull.
  if (live && !kg.items.empty()) {
    for (const auto& r : kg.meta.replicas()) {
      if (r.node() == options_.id || !peers_.contains(r.node())) continue;
      auto old = old_joined.find(r.node());
      if (old != old_joined.end() && old->second == Version::FromProto(r.joined())) continue;
      for (const auto& [key, item] : kg.items) MarkDirty(r.node(), name, key, item.version, false);
    }
  }
  DropDrainedItems(kg);
  PersistKeygroup(kg);
  // A ready replica whose readiness the catalog does not show states it (again).
  if (kg.replica && kg.ready && !self->ready()) MarkReadyInCatalog(kg);
}

bool Node::MergeReadiness(const proto::KeygroupMeta& from, proto::KeygroupMeta& to) {
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

void Node::MarkReadyInCatalog(Keygroup& kg) {
  // Not a new version of the entry (that could undo a concurrent change made from an older copy):
  // the same version with this replica's flag set, which every node merges into what it has.
  for (auto& r : *kg.meta.mutable_replicas()) {
    if (r.node() == options_.id) r.set_ready(true);
  }
  PersistKeygroup(kg);
  Version v = Version::FromProto(kg.meta.version());
  for (const auto& [peer, p] : peers_) MarkDirty(peer, kg.meta.name(), "", v, true);
}

void Node::DropDrainedItems(Keygroup& kg) {
  if (kg.replica || kg.items.empty()) return;
  for (const auto& [peer_id, peer] : peers_) {
    auto lo = peer.outbox.lower_bound({kg.meta.name(), std::string(1, '\0')});
    if (lo != peer.outbox.end() && lo->first.first == kg.meta.name()) return;  // still owed
  }
  DropItems(kg);
}

// ---- Replication -----------------------------------------------------------------------------

void Node::MarkDirty(const std::string& peer_id, const std::string& keygroup,
                     const std::string& key, const Version& version, bool push_now) {
  auto peer_it = peers_.find(peer_id);
  if (peer_it == peers_.end()) {
    // Never deliverable: the catalog names a node this node was not configured with.
    if (unknown_peers_warned_.insert(peer_id).second) {
      Log(core::LogLevel::kWarn,
          "keygroup '{}' names '{}', which is not a configured peer: it gets nothing "
          "from this node (start the node with --peer {}=ENDPOINT)",
          keygroup, peer_id, peer_id);
    }
    return;
  }
  Peer& peer = peer_it->second;
  auto [it, inserted] = peer.outbox.try_emplace({keygroup, key});
  it->second.version = version;
  it->second.last_sent = {};
  batch_.PutOutbox(OutboxRecord{peer_id, keygroup, key, version});
  if (push_now) {
    if (peer.fresh.empty()) fresh_peers_.push_back(peer_id);
    peer.fresh.emplace_back(keygroup, key);
  }
}

void Node::EraseOutbox(const std::string& peer_id, std::map<ItemKey, OutboxEntry>::iterator it) {
  batch_.EraseOutbox(peer_id, it->first.first, it->first.second);
  peers_[peer_id].outbox.erase(it);
}

void Node::SendEntries(const std::string& peer_id, const std::vector<ItemKey>& keys) {
  Peer& peer = peers_[peer_id];
  auto now = env_.Now();
  std::map<std::string, std::pair<proto::PeerMessage, size_t>> by_keygroup;
  auto emit = [&](const std::string& name) {
    auto node = by_keygroup.extract(name);
    if (!node.empty()) Send(peer_id, std::move(node.mapped().first));
  };
  for (const auto& ik : keys) {
    auto entry = peer.outbox.find(ik);
    if (entry == peer.outbox.end()) continue;  // acknowledged or dropped meanwhile
    auto kg = keygroups_.find(ik.first);
    if (kg == keygroups_.end()) continue;
    entry->second.last_sent = now;
    if (ik.second.empty()) {
      proto::PeerMessage msg;
      *msg.mutable_meta_update()->mutable_meta() = kg->second.meta;
      Send(peer_id, std::move(msg));
      continue;
    }
    auto item = kg->second.items.find(ik.second);
    if (item == kg->second.items.end()) continue;
    auto& [msg, bytes] = by_keygroup[ik.first];
    if (!msg.has_replicate()) {
      auto* r = msg.mutable_replicate();
      r->set_keygroup(ik.first);
      *r->mutable_incarnation() = kg->second.meta.created();
      *r->mutable_meta_version() = kg->second.meta.version();
    }
    auto* out = msg.mutable_replicate()->add_items();
    out->set_key(ik.second);
    out->set_value(item->second.value);
    item->second.version.ToProto(out->mutable_version());
    out->set_deleted(item->second.deleted);
    bytes += ik.second.size() + item->second.value.size() + kItemOverhead;
    if (bytes >= batch_bytes_ ||
        msg.replicate().items_size() >= static_cast<int>(kMaxItemsPerMessage)) {
      emit(ik.first);
    }
  }
  while (!by_keygroup.empty()) emit(by_keygroup.begin()->first);
}

void Node::RetryPeer(const std::string& peer_id) {
  Peer& peer = peers_[peer_id];
  if (peer.outbox.empty()) {
    peer.backlog = false;
    return;
  }
  auto now = env_.Now();
  std::vector<ItemKey> due;
  size_t bytes = 0;
  auto it = peer.outbox.upper_bound(peer.cursor);
  for (size_t scanned = 0; scanned < std::min(kMaxScanPerRound, peer.outbox.size()); ++scanned) {
    if (it == peer.outbox.end()) it = peer.outbox.begin();
    if (now - it->second.last_sent >= options_.retry_interval) {
      due.push_back(it->first);
      auto kg = keygroups_.find(it->first.first);
      if (kg != keygroups_.end() && !it->first.second.empty()) {
        auto item = kg->second.items.find(it->first.second);
        if (item != kg->second.items.end()) bytes += item->second.value.size();
      }
      bytes += it->first.second.size() + kItemOverhead;
      if (bytes >= batch_bytes_ || due.size() >= kMaxItemsPerMessage) {
        peer.cursor = it->first;
        break;
      }
    }
    peer.cursor = it->first;
    ++it;
  }
  peer.backlog = !due.empty();
  SendEntries(peer_id, due);
}

void Node::OnRetryTick() {
  auto now = env_.Now();
  for (auto& [peer_id, peer] : peers_) {
    if (peer.outbox.empty() || now < peer.next_retry) continue;
    // Back off while the peer stays silent; a message from it resets the backoff (OnPeerMessage).
    bool silent = peer.last_heard == core::TimePoint{} || now - peer.last_heard > peer.backoff;
    RetryPeer(peer_id);
    if (silent) peer.backoff = std::min(2 * peer.backoff, options_.max_retry_interval);
    peer.next_retry = now + peer.backoff;
  }
  After(options_.retry_interval, [this] { OnRetryTick(); });
}

void Node::OnPingTick() {
  auto now = env_.Now();
  for (const auto& [peer_id, peer] : peers_) {
    proto::PeerMessage msg;
    msg.mutable_ping()->set_nonce(static_cast<uint64_t>(now.time_since_epoch().count()));
    Send(peer_id, std::move(msg));
  }
  After(options_.ping_interval, [this] { OnPingTick(); });
}

void Node::OnPeerMessage(proto::PeerMessage&& msg) {
  RequestFlush();
  const std::string from = msg.from();
  auto peer_it = peers_.find(from);
  if (peer_it == peers_.end()) {
    Log(core::LogLevel::kWarn, "message from unknown node '{}' dropped", from);
    return;
  }
  Peer& peer = peer_it->second;
  auto now = env_.Now();
  if (peer.backoff > options_.retry_interval) {
    // The peer is back: resume pushing its backlog now rather than after the backoff.
    peer.backoff = options_.retry_interval;
    peer.next_retry = now;
  }
  peer.last_heard = now;

  switch (msg.body_case()) {
    case proto::PeerMessage::kReplicate:
      OnReplicate(from, *msg.mutable_replicate());
      break;
    case proto::PeerMessage::kReplicateAck:
      OnReplicateAck(from, msg.replicate_ack());
      break;
    case proto::PeerMessage::kMetaUpdate: {
      ApplyMeta(msg.meta_update().meta());
      proto::PeerMessage ack;
      ack.mutable_meta_ack()->set_keygroup(msg.meta_update().meta().name());
      *ack.mutable_meta_ack()->mutable_version() = msg.meta_update().meta().version();
      Send(from, std::move(ack));
      break;
    }
    case proto::PeerMessage::kMetaAck: {
      // Done when the peer has the version owed, or the entry as it is now (what is sent is
      // always the current entry, which may be older than the change that was owed, when a
      // deletion or a newer incarnation won).
      auto it = peer.outbox.find({msg.meta_ack().keygroup(), ""});
      auto kg = keygroups_.find(msg.meta_ack().keygroup());
      Version acked = Version::FromProto(msg.meta_ack().version());
      if (it != peer.outbox.end() &&
          (!(acked < it->second.version) ||
           (kg != keygroups_.end() && acked == Version::FromProto(kg->second.meta.version())))) {
        EraseOutbox(from, it);
      }
      break;
    }
    case proto::PeerMessage::kForwardRequest: {
      uint64_t fid = msg.forward_request().id();
      Dispatch(std::move(*msg.mutable_forward_request()->mutable_request()), /*forwarded=*/true,
               [this, from, fid](proto::Response&& response) {
                 proto::PeerMessage reply;
                 reply.mutable_forward_response()->set_id(fid);
                 *reply.mutable_forward_response()->mutable_response() = std::move(response);
                 Send(from, std::move(reply));
               });
      break;
    }
    case proto::PeerMessage::kForwardResponse: {
      auto it = forwards_.find(msg.forward_response().id());
      if (it == forwards_.end()) break;  // answered already, or gave up
      PendingForward& f = it->second;
      // An answer from the replica asked now, or a late one from a replica asked before (which
      // then did run the request: it is the answer).
      auto asked =
          f.candidates.begin() + static_cast<long>(std::min(f.next + 1, f.candidates.size()));
      if (std::find(f.candidates.begin(), asked, from) == asked) break;
      bool current = f.next < f.candidates.size() && f.candidates[f.next] == from;
      proto::Response& response = *msg.mutable_forward_response()->mutable_response();
      if (response.code() == proto::UNAVAILABLE) {
        if (!current) break;  // that replica was already given up on
        CancelTimer(f.timer);
        f.failures.push_back(from + ": " + response.error());
        ++f.next;
        TryNextForward(it->first);
        break;
      }
      CancelTimer(f.timer);
      response.set_id(f.request.id());
      Complete(f.done, std::move(response));
      forwards_.erase(it);
      break;
    }
    case proto::PeerMessage::kSyncRequest:
      OnSyncRequest(from, msg.sync_request());
      break;
    case proto::PeerMessage::kSyncResponse:
      OnSyncResponse(from, *msg.mutable_sync_response());
      break;
    case proto::PeerMessage::kPing: {
      proto::PeerMessage pong;
      pong.mutable_pong()->set_nonce(msg.ping().nonce());
      Send(from, std::move(pong));
      break;
    }
    case proto::PeerMessage::kPong: {
      auto sent = core::TimePoint(core::Duration(static_cast<int64_t>(msg.pong().nonce())));
      double rtt = core::ToMillis(now - sent);
      if (rtt >= 0) peer.rtt_ms = peer.rtt_ms < 0 ? rtt : 0.8 * peer.rtt_ms + 0.2 * rtt;
      break;
    }
    case proto::PeerMessage::BODY_NOT_SET:
      break;
  }
}

void Node::OnReplicate(const std::string& from, proto::Replicate& msg) {
  auto it = keygroups_.find(msg.keygroup());
  if (it == keygroups_.end()) return;  // the catalog entry has not arrived yet: no ack, retried
  Keygroup& kg = it->second;
  Version incarnation = Version::FromProto(msg.incarnation());
  Version local_incarnation = Version::FromProto(kg.meta.created());
  if (local_incarnation < incarnation) return;  // a newer incarnation this node does not know yet
  bool stale = incarnation < local_incarnation || !kg.replica;
  if (stale && Version::FromProto(kg.meta.version()) < Version::FromProto(msg.meta_version())) {
    return;  // the sender knows a newer catalog entry (maybe adding this node): wait for it
  }
  proto::PeerMessage ack;
  auto* a = ack.mutable_replicate_ack();
  a->set_keygroup(msg.keygroup());
  for (auto& item : *msg.mutable_items()) {
    auto* kv = a->add_applied();
    kv->set_key(item.key());
    *kv->mutable_version() = item.version();
    if (stale) continue;  // acknowledged so the sender stops, but not applied
    ApplyRemote(kg, item.key(),
                StoredItem{std::move(*item.mutable_value()), Version::FromProto(item.version()),
                           item.deleted()});
  }
  Send(from, std::move(ack));
}

void Node::OnReplicateAck(const std::string& from, const proto::ReplicateAck& msg) {
  Peer& peer = peers_[from];
  for (const auto& kv : msg.applied()) {
    Version v = Version::FromProto(kv.version());
    auto it = peer.outbox.find({msg.keygroup(), kv.key()});
    if (it != peer.outbox.end() && !(v < it->second.version)) EraseOutbox(from, it);
    FinishSyncWrites(from, msg.keygroup(), kv.key(), v);
  }
  if (auto kg = keygroups_.find(msg.keygroup()); kg != keygroups_.end()) {
    DropDrainedItems(kg->second);
  }
  if (peer.backlog) RetryPeer(from);
}

void Node::FinishSyncWrites(const std::string& peer, const std::string& keygroup,
                            const std::string& key, const Version& version) {
  for (auto it = sync_writes_.begin(); it != sync_writes_.end();) {
    SyncWrite& w = it->second;
    if (w.keygroup == keygroup && w.key == key && !(version < w.version)) {
      w.waiting.erase(peer);
      if (w.waiting.empty()) {
        CancelTimer(w.timer);
        Complete(w.done, std::move(w.response));
        it = sync_writes_.erase(it);
        continue;
      }
    }
    ++it;
  }
}

// ---- Joining ---------------------------------------------------------------------------------

void Node::StartSync(Keygroup& kg) {
  kg.sync_first = true;
  kg.sync_after.clear();
  kg.sync_attempt = 0;
  Log(core::LogLevel::kInfo, "pulling keygroup '{}' from the other replicas", kg.meta.name());
  SendSyncRequest(kg);
}

void Node::SendSyncRequest(Keygroup& kg) {
  CancelTimer(kg.sync_timer);
  auto others = NearestReplicas(kg.meta);
  std::string name = kg.meta.name();
  if (kg.meta.replicas_size() == 1) {
    // The only replica left (only possible through concurrent catalog changes): what this node
    // has is all there is.
    Log(core::LogLevel::kWarn,
        "keygroup '{}' has no other replica to pull from; serving what it holds", name);
    kg.ready = true;
    PersistKeygroup(kg);
    MarkReadyInCatalog(kg);
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
    if (others.empty() && unknown_peers_warned_.insert("sync:" + name).second) {
      Log(core::LogLevel::kWarn,
          "keygroup '{}': no other replica is a configured peer; cannot pull", name);
    }
    kg.sync_timer = After(options_.forward_timeout, [this, name] {
      Keygroup* kg = FindLive(name);
      if (kg == nullptr || !kg->replica || kg->ready) return;
      kg->sync_timer = 0;
      SendSyncRequest(*kg);
    });
    return;
  }
  kg.sync_source = sources[kg.sync_attempt % sources.size()];
  proto::PeerMessage msg;
  auto* r = msg.mutable_sync_request();
  r->set_keygroup(name);
  *r->mutable_incarnation() = kg.meta.created();
  r->set_after(kg.sync_after);
  r->set_first(kg.sync_first);
  Send(kg.sync_source, std::move(msg));
  kg.sync_timer = After(options_.forward_timeout, [this, name] {
    Keygroup* kg = FindLive(name);
    if (kg == nullptr || !kg->replica || kg->ready) return;
    kg->sync_timer = 0;
    ++kg->sync_attempt;
    SendSyncRequest(*kg);
  });
}

void Node::OnSyncRequest(const std::string& from, const proto::SyncRequest& msg) {
  proto::PeerMessage reply;
  auto* r = reply.mutable_sync_response();
  r->set_keygroup(msg.keygroup());
  *r->mutable_incarnation() = msg.incarnation();
  Keygroup* kg = FindLive(msg.keygroup());
  if (kg == nullptr || !kg->ready ||
      Version::FromProto(kg->meta.created()) != Version::FromProto(msg.incarnation())) {
    r->set_code(proto::UNAVAILABLE);
    return Send(from, std::move(reply));
  }
  auto it = msg.first() ? kg->items.begin() : kg->items.upper_bound(msg.after());
  size_t bytes = 0;
  for (; it != kg->items.end(); ++it) {
    if (r->items_size() > 0 &&
        (bytes >= batch_bytes_ || r->items_size() >= static_cast<int>(kMaxItemsPerMessage))) {
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
  Send(from, std::move(reply));
}

void Node::OnSyncResponse(const std::string& from, proto::SyncResponse& msg) {
  Keygroup* kg = FindLive(msg.keygroup());
  if (kg == nullptr || !kg->replica || kg->ready || kg->sync_source != from ||
      Version::FromProto(kg->meta.created()) != Version::FromProto(msg.incarnation())) {
    return;
  }
  CancelTimer(kg->sync_timer);
  kg->sync_timer = 0;
  if (msg.code() != proto::OK) {
    ++kg->sync_attempt;
    std::string name = kg->meta.name();
    kg->sync_timer = After(options_.retry_interval, [this, name] {
      Keygroup* kg = FindLive(name);
      if (kg != nullptr && kg->replica && !kg->ready) SendSyncRequest(*kg);
    });
    return;
  }
  for (auto& item : *msg.mutable_items()) {
    kg->sync_after = item.key();
    ApplyRemote(*kg, item.key(),
                StoredItem{std::move(*item.mutable_value()), Version::FromProto(item.version()),
                           item.deleted()});
  }
  kg->sync_first = false;
  if (msg.done()) {
    kg->ready = true;
    PersistKeygroup(*kg);
    MarkReadyInCatalog(*kg);
    Log(core::LogLevel::kInfo, "keygroup '{}' pulled: {} items, serving reads", kg->meta.name(),
        kg->items.size());
    return;
  }
  SendSyncRequest(*kg);
}

}  // namespace enoki::node
