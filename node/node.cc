// The Enoki node: start-up, and the routing of requests and peer messages to its protocols.
#include "node/node.h"

#include <algorithm>
#include <set>

#include <google/protobuf/descriptor.h>

namespace enoki::node {

size_t MaxMessageBytes(size_t max_value_bytes) { return 2 * max_value_bytes + (1 << 20); }

Node::Node(NodeOptions options, core::Env& env, net::Transport& transport, StorageEngine& storage)
    : core_(std::move(options), env, transport, storage),
      peers_(core_),
      replication_(core_, peers_),
      membership_(core_, peers_, replication_),
      catalog_(core_, peers_, replication_),
      joining_(core_, peers_, catalog_),
      forwarding_(core_, peers_),
      items_(core_, replication_),
      anti_entropy_(core_, peers_) {
  // In this order. Either order gives the same result today: replication's part only touches the
  // outbox, synchronous writes and the batch, and joining's only starts or stops a pull (which
  // touches neither); a subscriber that did more would have to say where it goes.
  catalog_.Subscribe([this](const KeygroupChange& c) { replication_.OnKeygroupChanged(c); });
  catalog_.Subscribe([this](const KeygroupChange& c) { joining_.OnKeygroupChanged(c); });
}

core::Status Node::Start() {
  auto& keygroups = core_.keygroups();
  HybridClock& clock = core_.clock();
  // A stored version further ahead of this node's clock than a peer's may be (peer_checks.h) is
  // no version this cluster made: a damaged database. Followed, it would win every later write of
  // its key and carry the clock (and every clock that sees it) into the future, up to overflow.
  const int64_t latest_wall_us =
      core_.env().WallMicros() +
      std::chrono::duration_cast<std::chrono::microseconds>(core_.options().max_clock_ahead)
          .count();
  auto too_far_ahead = [&](const Version& v) {
    return "its version " + v.ToString() + " is " +
           std::to_string((v.wall_us - latest_wall_us) / 1000) +
           " ms beyond the clock's allowed lead (--max-clock-ahead)";
  };
  LoadVisitor visitor;
  visitor.keygroup = [&](KeygroupRecord&& rec) {
    Keygroup& kg = keygroups[rec.meta.name()];
    kg.meta = std::move(rec.meta);
    kg.replica = !kg.meta.deleted() && IsReplicaIn(kg.meta, core_.id());
    kg.ready = kg.replica && rec.ready;
    Version version = Version::FromProto(kg.meta.version());
    if (version.wall_us > latest_wall_us) {
      // Kept (the keygroup's items hang on it), but the clock does not follow it.
      core_.Log(core::LogLevel::kError, "keygroup '{}' in storage: {}; the clock ignores it",
                kg.meta.name(), too_far_ahead(version));
      return;
    }
    clock.Observe(version);
  };
  uint64_t corrupt = 0;
  // An item that cannot be trusted is not loaded: this replica lacks it until anti-entropy takes
  // it back from one that holds it (and the write replaces the stored row).
  auto drop = [&](const std::string& keygroup, const std::string& key, const std::string& why) {
    if (++corrupt <= 10) {
      core_.Log(core::LogLevel::kError,
                "item '{}' of keygroup '{}' in storage: {}: dropped here; anti-entropy takes it "
                "back from a replica that holds it",
                key, keygroup, why);
    }
  };
  visitor.item = [&](const std::string& keygroup, const std::string& key, StoredItem&& item) {
    if (item.version.wall_us > latest_wall_us) {
      drop(keygroup, key, too_far_ahead(item.version));
      return;
    }
    clock.Observe(item.version);
    keygroups[keygroup].items[key] = std::move(item);  // each key is loaded once
  };
  std::vector<OutboxRecord> outbox;  // loaded once the members are peers
  visitor.outbox = [&](OutboxRecord&& rec) { outbox.push_back(std::move(rec)); };
  visitor.member = [this](proto::Member&& m) { membership_.Load(std::move(m)); };
  visitor.function = [this](const std::string& name, std::string&& bytes) {
    proto::FunctionSpec spec;
    if (spec.ParseFromString(bytes)) {
      saved_functions_.push_back(std::move(spec));
    } else {
      core_.Log(core::LogLevel::kWarn, "stored function '{}' does not parse; skipped", name);
    }
  };
  visitor.corrupt = [&](const std::string& keygroup, const std::string& key) {
    drop(keygroup, key, "it failed its checksum");
  };
  ENOKI_RETURN_IF_ERROR(core_.storage().Load(visitor));
  NodeMetrics& m = core_.metrics();
  m.corrupt_items = corrupt;
  m.lost_commits = core_.storage().LostCommits();
  if (corrupt > 10) {
    core_.Log(core::LogLevel::kError, "{} items in all were dropped as corrupt", corrupt);
  }
  membership_.Start();
  for (auto& rec : outbox) replication_.Load(std::move(rec));
  if (m.lost_commits > 0) {
    // What it held may lack what it acknowledged: a keygroup that another replica holds is
    // pulled again before it serves reads here (until then they are forwarded).
    std::string pulled;
    for (auto& [name, kg] : keygroups) {
      if (!kg.ready || kg.meta.replicas_size() < 2) continue;
      kg.ready = false;
      core_.PersistKeygroup(kg);
      pulled += (pulled.empty() ? "" : ", ") + name;
    }
    core_.Log(core::LogLevel::kCritical,
              "storage lost {} commits it had made (its write-ahead log or database was deleted "
              "or damaged): writes it acknowledged may be gone here; pulling again from the "
              "other replicas: {}",
              m.lost_commits, pulled.empty() ? "(no keygroup has one)" : pulled);
  }
  for (auto& [name, kg] : keygroups) {
    if (kg.replica && !kg.ready) joining_.Pull(kg);
    replication_.DropDrainedItems(kg);
  }
  replication_.Start();
  peers_.Start();
  anti_entropy_.Start();
  core_.RequestFlush();  // what loading queued
  core_.Log(core::LogLevel::kInfo, "started: {} keygroups, {} outbox entries", keygroups.size(),
            OutboxSize());
  return core::Status::Ok();
}

size_t Node::OutboxSize() const { return replication_.OutboxSize(); }

bool Node::HasKeygroup(const std::string& keygroup) const {
  auto it = core_.keygroups().find(keygroup);
  return it != core_.keygroups().end() && !it->second.meta.deleted();
}

bool Node::IsReadyReplica(const std::string& keygroup) const {
  const auto& keygroups = core_.keygroups();
  auto it = keygroups.find(keygroup);
  return it != keygroups.end() && it->second.ready;
}

void Node::SaveFunction(const std::string& name, const proto::FunctionSpec* spec) {
  core_.RequestFlush();
  if (spec == nullptr) {
    core_.batch().EraseFunction(name);
  } else {
    core_.batch().PutFunction(name, spec->SerializeAsString());
  }
}

void Node::Flush() { core_.Flush(); }

// ---- Requests --------------------------------------------------------------------------------

void Node::OnClientRequest(const net::ClientId& client, const net::Caller& caller,
                           proto::Request&& request) {
  Serve(caller, std::move(request), [this, client](proto::Response&& response) {
    core_.transport().ReplyToClient(client, std::move(response));
  });
}

void Node::Serve(const net::Caller& caller, proto::Request&& request, Done done) {
  core_.RequestFlush();
  size_t op = static_cast<size_t>(request.op_case());
  RequestStats* stats = op < stats_by_op_.size() ? stats_by_op_[op] : nullptr;
  if (stats == nullptr) {
    stats = &core_.metrics().requests[OpName(request)];  // map nodes stay put
    if (op < stats_by_op_.size()) stats_by_op_[op] = stats;
  }
  core::TimePoint start = core_.env().Now();
  Dispatch(std::move(request), caller, /*forwarded=*/false,
           [this, stats, start, done = std::move(done)](proto::Response&& response) {
             ++stats->requests;
             if (response.code() != proto::OK) ++stats->errors;
             stats->latency.Observe(core::ToMillis(core_.env().Now() - start) / 1000.0);
             done(std::move(response));
           });
}

std::string Node::OpName(const proto::Request& request) {
  if (request.op_case() == proto::Request::OP_NOT_SET) return "none";
  const auto* field = proto::Request::descriptor()->FindFieldByNumber(request.op_case());
  return field == nullptr ? "unknown" : field->name();
}

void Node::ListKeygroups(proto::KeygroupList& out) const {
  for (const auto& [name, kg] : core_.keygroups()) {
    if (kg.meta.deleted()) continue;
    proto::KeygroupListing* l = out.add_keygroups();
    *l->mutable_meta() = kg.meta;
    l->set_replica(kg.replica);
    l->set_held(kg.ready);
  }
}

void Node::StatusReport(proto::NodeStatus& out) const {
  out.set_node(core_.id());
  auto now = core_.env().Now();
  for (const auto& [id, peer] : peers_.peers()) {
    proto::PeerStatus* p = out.add_peers();
    p->set_node(id);
    if (const proto::Member* m = membership_.Find(id)) p->set_endpoint(m->endpoint());
    p->set_up(peers_.IsLive(peer, now));
    p->set_rtt_ms(peer.rtt_ms);
    p->set_last_heard_ms(
        peer.last_heard == core::TimePoint{} ? -1.0 : core::ToMillis(now - peer.last_heard));
    p->set_outbox(replication_.OutboxSize(id));
  }
  for (const auto& [name, kg] : core_.keygroups()) {
    if (kg.ready) {
      out.add_held(name);
    } else if (kg.replica) {
      out.add_joining(name);
    }
  }
  out.set_outbox(replication_.OutboxSize());
  out.set_storage_fault(core_.StorageFault().message());
  out.set_commit_running_ms(
      std::chrono::duration<double, std::milli>(core_.CommitRunningFor()).count());
}

void Node::WriteMetrics(MetricsWriter& w) const {
  const NodeMetrics& m = core_.metrics();
  w.Family("enoki_node_info", "gauge", "Always 1; the label names the node.");
  w.Sample("enoki_node_info", {{"node", core_.id()}}, 1);
  w.Family("enoki_requests_total", "counter",
           "Client requests answered by this node, by kind (the request's field in "
           "net/proto/enoki.proto), whatever their outcome.");
  for (const auto& [op, s] : m.requests) {
    w.Sample("enoki_requests_total", {{"op", op}}, static_cast<double>(s.requests));
  }
  w.Family("enoki_request_errors_total", "counter",
           "Client requests answered with a code other than OK, by kind (a get of an absent key "
           "is one: NOT_FOUND).");
  for (const auto& [op, s] : m.requests) {
    w.Sample("enoki_request_errors_total", {{"op", op}}, static_cast<double>(s.errors));
  }
  w.Family("enoki_request_duration_seconds", "histogram",
           "Time from a client request's arrival at the node to its answer (after the write "
           "is durable; for sync keygroups, replicated), by kind; the node's monotonic clock.");
  for (const auto& [op, s] : m.requests) {
    w.Histogram("enoki_request_duration_seconds", {{"op", op}}, s.latency);
  }
  auto now = core_.env().Now();
  w.Family("enoki_peer_up", "gauge",
           "1 if the peer was heard from within the liveness timeout (4 ping intervals and one "
           "retry interval), else 0.");
  for (const auto& [id, peer] : peers_.peers()) {
    w.Sample("enoki_peer_up", {{"peer", id}}, peers_.IsLive(peer, now) ? 1 : 0);
  }
  w.Family("enoki_peer_rtt_seconds", "gauge",
           "Smoothed round-trip time of the pings to the peer (absent until one was measured).");
  for (const auto& [id, peer] : peers_.peers()) {
    if (peer.rtt_ms >= 0) w.Sample("enoki_peer_rtt_seconds", {{"peer", id}}, peer.rtt_ms / 1000);
  }
  w.Family("enoki_replication_outbox_entries", "gauge",
           "Items and catalog entries this node still owes the peer (not yet acknowledged).");
  for (const auto& [id, peer] : peers_.peers()) {
    w.Sample("enoki_replication_outbox_entries", {{"peer", id}},
             static_cast<double>(replication_.OutboxSize(id)));
  }
  w.Family("enoki_replication_applied_total", "counter",
           "Items from peers' replication messages that this replica applied (newer than what "
           "it held).");
  w.Sample("enoki_replication_applied_total", {}, static_cast<double>(m.replicated_items));
  w.Family("enoki_replication_lag_seconds", "histogram",
           "For each item applied from a peer: this node's wall clock when it applied it minus "
           "the wall-clock time in the item's version (taken at the origin when it was written). "
           "Two hosts' clocks: across machines it includes their offset; on one host it is exact.");
  w.Histogram("enoki_replication_lag_seconds", {}, m.replication_lag);
  // O(keygroups): a scrape must not walk the items (it runs on the loop, between requests).
  size_t live = 0, held = 0, items = 0;
  for (const auto& [name, kg] : core_.keygroups()) {
    if (kg.meta.deleted()) continue;
    ++live;
    if (kg.ready) ++held;
    items += kg.items.size();
  }
  w.Family("enoki_keygroups", "gauge", "Keygroups in this node's catalog (not deleted).");
  w.Sample("enoki_keygroups", {}, static_cast<double>(live));
  w.Family("enoki_keygroups_held", "gauge", "Keygroups of which this node holds a ready replica.");
  w.Sample("enoki_keygroups_held", {}, static_cast<double>(held));
  w.Family("enoki_storage_items", "gauge",
           "Items this node stores, tombstones included (over all keygroups).");
  w.Sample("enoki_storage_items", {}, static_cast<double>(items));
  w.Family("enoki_anti_entropy_exchanges_total", "counter",
           "Digest exchanges this node started with a peer replica of a keygroup it holds "
           "(node/anti_entropy.h).");
  w.Sample("enoki_anti_entropy_exchanges_total", {}, static_cast<double>(m.digest_exchanges));
  w.Family("enoki_anti_entropy_items_sent_total", "counter",
           "Items this node sent to a peer to repair it (it lacked them or held older versions).");
  w.Sample("enoki_anti_entropy_items_sent_total", {}, static_cast<double>(m.repair_items_sent));
  w.Family("enoki_anti_entropy_items_repaired_total", "counter",
           "Items from a peer's repair that this node applied (newer than what it held).");
  w.Sample("enoki_anti_entropy_items_repaired_total", {}, static_cast<double>(m.repaired_items));
  w.Family("enoki_anti_entropy_catalog_exchanges_total", "counter",
           "Catalog exchanges this node started: a digest of its whole catalog to one peer "
           "(node/anti_entropy.h).");
  w.Sample("enoki_anti_entropy_catalog_exchanges_total", {},
           static_cast<double>(m.catalog_exchanges));
  w.Family("enoki_anti_entropy_catalog_lists_sent_total", "counter",
           "Lists of its catalog entries this node sent because a peer's catalog digest differed.");
  w.Sample("enoki_anti_entropy_catalog_lists_sent_total", {},
           static_cast<double>(m.catalog_lists_sent));
  w.Family("enoki_anti_entropy_catalog_entries_sent_total", "counter",
           "Keygroup entries this node sent to a peer that lacked them or held older ones.");
  w.Sample("enoki_anti_entropy_catalog_entries_sent_total", {},
           static_cast<double>(m.catalog_entries_sent));
  w.Family("enoki_storage_corrupt_items", "gauge",
           "Items that failed their checksum, or whose version was further ahead of the clock than "
           "--max-clock-ahead, when the node loaded its storage at start (dropped there; "
           "anti-entropy takes them back from a replica).");
  w.Sample("enoki_storage_corrupt_items", {}, static_cast<double>(m.corrupt_items));
  w.Family("enoki_storage_lost_commits", "gauge",
           "Commits the storage had made and no longer held when the node started (its "
           "write-ahead log or database deleted or damaged); its keygroups were pulled again.");
  w.Sample("enoki_storage_lost_commits", {}, static_cast<double>(m.lost_commits));
  w.Family("enoki_storage_writable", "gauge",
           "1 while commits succeed; 0 after one failed (a full, read-only or failing disk) "
           "until a retried one succeeds: writes are refused meanwhile, reads served.");
  w.Sample("enoki_storage_writable", {}, core_.StorageFault().ok() ? 1 : 0);
  w.Family("enoki_storage_commit_failures_total", "counter",
           "Commits of the node's storage that failed (each retry counts).");
  w.Sample("enoki_storage_commit_failures_total", {}, static_cast<double>(m.commit_failures));
  w.Family("enoki_storage_commit_running_seconds", "gauge",
           "How long the storage's commit under way has run (0: none is); it grows while the "
           "disk stalls (writes wait meanwhile, reads are served).");
  w.Sample("enoki_storage_commit_running_seconds", {},
           std::chrono::duration<double>(core_.CommitRunningFor()).count());
}

void Node::Execute(proto::Request request, Done done) {
  core_.RequestFlush();
  Dispatch(std::move(request), net::Caller{}, /*forwarded=*/false, std::move(done));
}

void Node::ExecuteAt(const std::string& target, proto::Request request, core::Duration timeout,
                     Done done) {
  core_.RequestFlush();
  if (target == core_.id()) return Execute(std::move(request), std::move(done));
  if (!peers_.Contains(target)) {
    return core_.Fail(
        done, ResponseTo(request, core_.id()),
        core::Status::InvalidArgument("node '" + target + "' is not a peer of " + core_.id()));
  }
  forwarding_.At({target}, std::move(request), timeout, std::move(done));
}

bool Node::ChangesState(const proto::Request& request) {
  switch (request.op_case()) {
    case proto::Request::kCreateKeygroup:
    case proto::Request::kDeleteKeygroup:
    case proto::Request::kAddReplica:
    case proto::Request::kRemoveReplica:
    case proto::Request::kDeployFunction:
    case proto::Request::kDeleteFunction:
    case proto::Request::kJoin:
    case proto::Request::kLeave:
      return true;
    default:  // item writes are refused where they are run (ItemOps): a node forwards them
      return false;
  }
}

void Node::Dispatch(proto::Request&& request, const net::Caller& caller, bool forwarded,
                    Done done) {
  proto::Response response = ResponseTo(request, core_.id());
  const std::string& self = core_.id();
  // A node that left serves nothing but what says where it stands: what it holds is no longer
  // replicated, and nobody would take its writes.
  if (membership_.HasLeft() && request.op_case() != proto::Request::kNodeStatus &&
      request.op_case() != proto::Request::kListKeygroups &&
      request.op_case() != proto::Request::kLeave) {
    return core_.Fail(done, std::move(response),
                      core::Status::FailedPrecondition(
                          "node " + self +
                          " left the cluster: it serves nothing (start it with --join to take "
                          "part again)"));
  }
  if (!core_.StorageFault().ok() && ChangesState(request)) {
    return core_.Fail(done, std::move(response), core_.StorageFault());
  }
  switch (request.op_case()) {
    case proto::Request::kGet:
    case proto::Request::kPut:
    case proto::Request::kDelete:
    case proto::Request::kScan:
    case proto::Request::kAppend:
      return DispatchItemOp(std::move(request), forwarded, std::move(response), std::move(done));
    case proto::Request::kCreateKeygroup: {
      core::Status st = catalog_.Create(request.create_keygroup(), caller, response);
      if (!st.ok()) return core_.Fail(done, std::move(response), st);
      return core_.Complete(done, std::move(response));
    }
    case proto::Request::kDeleteKeygroup: {
      core::Status st = catalog_.Delete(request.delete_keygroup().name());
      if (!st.ok()) return core_.Fail(done, std::move(response), st);
      return core_.Complete(done, std::move(response));
    }
    case proto::Request::kKeygroupInfo: {
      Keygroup* kg = core_.FindLive(request.keygroup_info().name());
      if (kg == nullptr) {
        return core_.Fail(done, std::move(response),
                          core::Status::NotFound("keygroup '" + request.keygroup_info().name() +
                                                 "' does not exist"));
      }
      *response.mutable_keygroup() = kg->meta;
      return core_.Complete(done, std::move(response));
    }
    case proto::Request::kListKeygroups:
      ListKeygroups(*response.mutable_keygroup_list());
      return core_.Complete(done, std::move(response));
    case proto::Request::kNodeStatus:
      StatusReport(*response.mutable_status());
      // At once, a stalled commit included: it says what the node does now, and promises
      // nothing about what is durable.
      return core_.Complete(done, std::move(response), core_.durable_seq());
    case proto::Request::kAddReplica:
    case proto::Request::kRemoveReplica: {
      bool add = request.op_case() == proto::Request::kAddReplica;
      const auto& kg = add ? request.add_replica().keygroup() : request.remove_replica().keygroup();
      const auto& node = add ? request.add_replica().node() : request.remove_replica().node();
      core::Status st = catalog_.ChangeReplicas(kg, node, add, response);
      if (!st.ok()) return core_.Fail(done, std::move(response), st);
      return core_.Complete(done, std::move(response));
    }
    case proto::Request::kDeployFunction:
    case proto::Request::kDeleteFunction:
    case proto::Request::kListFunctions:
    case proto::Request::kInvoke:
    case proto::Request::kFunctionLogs:
      if (function_handler_) {
        return function_handler_(std::move(request), caller, std::move(done));
      }
      return core_.Fail(done, std::move(response),
                        core::Status::InvalidArgument("node " + self + " runs no function host"));
    case proto::Request::kJoin: {
      core::Status st =
          membership_.Join(request.join().member(), caller, *response.mutable_members());
      if (!st.ok()) return core_.Fail(done, std::move(response), st);
      return core_.Complete(done, std::move(response));
    }
    case proto::Request::kLeave:
      return DispatchLeave(std::move(request), forwarded, std::move(response), std::move(done));
    case proto::Request::kMeasureRtt:
      return MeasureRtt(request.measure_rtt(), std::move(response), std::move(done));
    case proto::Request::kSetLink:
    case proto::Request::kTrace:
    case proto::Request::kClock:
    case proto::Request::kLoopStats:
      return core_.Fail(done, std::move(response),
                        core::Status::InvalidArgument(OpName(request) +
                                                      " is served beside a real node (its "
                                                      "transport), not by node " +
                                                      self));
    case proto::Request::kStartCallers:
    case proto::Request::kCalls:
      return core_.Fail(done, std::move(response),
                        core::Status::InvalidArgument(OpName(request) +
                                                      " is served by a cluster run's client "
                                                      "host, not by node " +
                                                      self));
    case proto::Request::OP_NOT_SET:
      break;
  }
  core_.Fail(done, std::move(response),
             core::Status::InvalidArgument("request names no operation"));
}

void Node::MeasureRtt(const proto::MeasureRttRequest& request, proto::Response&& response,
                      Done done) {
  constexpr uint32_t kMaxProbes = 100;
  if (request.probes() < 1 || request.probes() > kMaxProbes) {
    return core_.Fail(done, std::move(response),
                      core::Status::InvalidArgument("measure_rtt: probes must be 1 to " +
                                                    std::to_string(kMaxProbes) + ", not " +
                                                    std::to_string(request.probes())));
  }
  std::vector<std::string> peers(request.peers().begin(), request.peers().end());
  if (peers.empty()) {
    return core_.Fail(done, std::move(response),
                      core::Status::InvalidArgument("measure_rtt names no peer"));
  }
  std::set<std::string> seen;
  for (const auto& p : peers) {
    if (!peers_.Contains(p)) {
      return core_.Fail(done, std::move(response),
                        core::Status::InvalidArgument("measure_rtt: '" + p +
                                                      "' is not a peer of node " + core_.id()));
    }
    if (!seen.insert(p).second) {
      return core_.Fail(done, std::move(response),
                        core::Status::InvalidArgument("measure_rtt names peer " + p + " twice"));
    }
  }
  peers_.Measure(peers, static_cast<int>(request.probes()),
                 [this, peers, response = std::move(response),
                  done = std::move(done)](PeerTable::RttSamples samples) mutable {
                   for (const auto& p : peers) {
                     std::vector<double>& rtts = samples[p];
                     proto::PeerRtt* out = response.mutable_rtts()->add_peers();
                     out->set_node(p);
                     out->set_answered(static_cast<uint32_t>(rtts.size()));
                     if (rtts.empty()) continue;
                     std::sort(rtts.begin(), rtts.end());
                     out->set_min_ms(rtts.front());
                     out->set_median_ms(rtts[rtts.size() / 2]);
                   }
                   core_.Complete(done, std::move(response));
                 });
}

void Node::DispatchItemOp(proto::Request&& request, bool forwarded, proto::Response&& response,
                          Done done) {
  const std::string& self = core_.id();
  const std::string& name = KeygroupOf(request);
  core::Status st = ValidateName("keygroup", name);
  if (!st.ok()) return core_.Fail(done, std::move(response), st);
  Keygroup* kg = core_.FindLive(name);
  if (kg == nullptr && forwarded && !core_.keygroups().contains(name)) {
    // The sender knows the keygroup and this node not yet: let it try another replica.
    return core_.Fail(
        done, std::move(response),
        core::Status::Unavailable("node " + self + " does not know keygroup '" + name + "' yet"));
  }
  if (kg == nullptr) {
    return core_.Fail(done, std::move(response),
                      core::Status::NotFound("keygroup '" + name + "' does not exist"));
  }
  if (kg->ready) return items_.Run(*kg, std::move(request), std::move(response), std::move(done));
  if (forwarded) {
    return core_.Fail(
        done, std::move(response),
        core::Status::Unavailable("node " + self + " holds no ready replica of '" + name + "'"));
  }
  forwarding_.Forward(*kg, std::move(request), std::move(done));
}

void Node::DispatchLeave(proto::Request&& request, bool forwarded, proto::Response&& response,
                         Done done) {
  const std::string& self = core_.id();
  std::string node = request.leave().node().empty() ? self : request.leave().node();
  if (membership_.HasLeft()) {
    return core_.Fail(
        done, std::move(response),
        core::Status::FailedPrecondition("node " + self + " left the cluster already"));
  }
  if (node == self) {
    // Another member makes the entry (and the catalog changes) that the others then take from
    // it: this node stops talking to them once it learns that it left.
    if (forwarded) {
      return core_.Fail(done, std::move(response),
                        core::Status::InvalidArgument("node " + self + " cannot leave for itself"));
    }
    // Nothing it took may be lost: it leaves once the others have all it owes them.
    if (size_t owed = replication_.OutboxSize(); owed > 0) {
      return core_.Fail(done, std::move(response),
                        core::Status::FailedPrecondition(
                            "node " + self + " still owes its peers " + std::to_string(owed) +
                            " entries (enoki node status: OUTBOX); it leaves once they have "
                            "them, so that no write it took is lost"));
    }
    std::vector<std::string> others;
    for (const auto& [id, peer] : peers_.peers()) others.push_back(id);
    if (others.empty()) {
      return core_.Fail(done, std::move(response),
                        core::Status::FailedPrecondition(
                            "node " + self + " knows no other member to hand its leave to"));
    }
    request.mutable_leave()->set_node(self);
    return forwarding_.At(peers_.Nearest(others), std::move(request),
                          core_.options().forward_timeout, std::move(done));
  }
  if (!membership_.IsPeer(node)) {
    return core_.Fail(
        done, std::move(response),
        core::Status::NotFound("node '" + node + "' is not a member known to " + self));
  }
  // Its keygroups: it must not hold the last replica of one; then it is removed from each.
  std::vector<std::string> held, last;
  for (const auto& [name, kg] : core_.keygroups()) {
    if (kg.meta.deleted() || !IsReplicaIn(kg.meta, node)) continue;
    (kg.meta.replicas_size() == 1 ? last : held).push_back(name);
  }
  if (!last.empty()) {
    std::string names;
    for (const auto& n : last) names += (names.empty() ? "'" : ", '") + n + "'";
    return core_.Fail(
        done, std::move(response),
        core::Status::FailedPrecondition("node '" + node + "' holds the only replica of " + names +
                                         ": add another replica or delete the keygroup first"));
  }
  for (const auto& name : held) {
    proto::Response changed;
    core::Status st = catalog_.ChangeReplicas(name, node, /*add=*/false, changed);
    if (!st.ok()) return core_.Fail(done, std::move(response), st);
  }
  core::Status st = membership_.Leave(node);
  if (!st.ok()) return core_.Fail(done, std::move(response), st);
  // It learns that it left after the answer: a node that asked to leave itself takes that from
  // the member it asked, which it forgets once it knows.
  Done answer_then_tell = [this, node, done = std::move(done)](proto::Response&& r) mutable {
    done(std::move(r));
    membership_.SendListTo(node);
  };
  core_.Complete(answer_then_tell, std::move(response));
}

// ---- Peer messages ---------------------------------------------------------------------------

void Node::OnPeerMessage(proto::PeerMessage&& msg) {
  core_.RequestFlush();
  const std::string from = msg.from();
  PeerTable::Peer* peer = peers_.Find(from);
  if (peer == nullptr) {
    if (auto line = unknown_senders_.Add(core_.env().Now(),
                                         "message from unknown node '" + from + "' dropped")) {
      core_.Log(core::LogLevel::kWarn, "{}", *line);
    }
    return;
  }
  core::Status st = CheckPeerMessage(
      msg, {core_.options().max_value_bytes,
            core_.env().WallMicros() + std::chrono::duration_cast<std::chrono::microseconds>(
                                           core_.options().max_clock_ahead)
                                           .count()});
  if (!st.ok()) {
    if (auto line = refused_messages_.Add(
            core_.env().Now(), "refused a peer message from '" + from + "': " + st.message())) {
      core_.Log(core::LogLevel::kWarn, "{}", *line);
    }
    return;
  }
  auto now = core_.env().Now();
  replication_.OnHeard(from, now);
  peer->last_heard = now;

  // While writes cannot be made durable, what would write waits: its sender tries again.
  if (!core_.StorageFault().ok() && (msg.has_replicate() || msg.has_meta_update() ||
                                     msg.has_catalog_entries() || msg.has_sync_response())) {
    return;
  }
  switch (msg.body_case()) {
    case proto::PeerMessage::kReplicate:
      return replication_.OnReplicate(from, *msg.mutable_replicate());
    case proto::PeerMessage::kReplicateAck:
      return replication_.OnReplicateAck(from, msg.replicate_ack());
    case proto::PeerMessage::kMetaUpdate:
      return catalog_.OnMetaUpdate(from, msg.meta_update());
    case proto::PeerMessage::kMetaAck:
      return replication_.OnMetaAck(from, msg.meta_ack());
    case proto::PeerMessage::kForwardRequest:
      return OnForwardRequest(from, *msg.mutable_forward_request());
    case proto::PeerMessage::kForwardResponse:
      return forwarding_.OnForwardResponse(from, *msg.mutable_forward_response());
    case proto::PeerMessage::kSyncRequest:
      return joining_.OnSyncRequest(from, msg.sync_request());
    case proto::PeerMessage::kSyncResponse:
      return joining_.OnSyncResponse(from, *msg.mutable_sync_response());
    case proto::PeerMessage::kPing:
      membership_.OnPing(from, msg.ping().members_digest());
      return peers_.OnPing(from, msg.ping());
    case proto::PeerMessage::kMembers:
      return membership_.OnMembers(from, msg.members());
    case proto::PeerMessage::kDigestRequest:
      return anti_entropy_.OnDigestRequest(from, msg.digest_request());
    case proto::PeerMessage::kDigestReply:
      return anti_entropy_.OnDigestReply(from, msg.digest_reply());
    case proto::PeerMessage::kRepairRequest:
      return anti_entropy_.OnRepairRequest(from, msg.repair_request());
    case proto::PeerMessage::kCatalogDigest:
      return anti_entropy_.OnCatalogDigest(from, msg.catalog_digest());
    case proto::PeerMessage::kCatalogList:
      return anti_entropy_.OnCatalogList(from, msg.catalog_list());
    case proto::PeerMessage::kCatalogWant:
      return anti_entropy_.OnCatalogWant(from, msg.catalog_want());
    case proto::PeerMessage::kCatalogEntries:
      return catalog_.OnCatalogEntries(msg.catalog_entries());
    case proto::PeerMessage::kPong:
      return peers_.OnPong(from, *peer, msg.pong(), now);
    case proto::PeerMessage::BODY_NOT_SET:
      return;
  }
}

void Node::OnForwardRequest(const std::string& from, proto::ForwardRequest& msg) {
  uint64_t id = msg.id();
  Dispatch(std::move(*msg.mutable_request()), net::Caller{}, /*forwarded=*/true,
           [this, from, id](proto::Response&& response) {
             proto::PeerMessage reply;
             reply.mutable_forward_response()->set_id(id);
             *reply.mutable_forward_response()->mutable_response() = std::move(response);
             core_.SendAnswer(from, std::move(reply));
           });
}

}  // namespace enoki::node
