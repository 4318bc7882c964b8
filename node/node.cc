// The Enoki node: start-up, and the routing of requests and peer messages to its protocols.
#include "node/node.h"

namespace enoki::node {

size_t MaxMessageBytes(size_t max_value_bytes) { return 2 * max_value_bytes + (1 << 20); }

Node::Node(NodeOptions options, core::Env& env, net::Transport& transport, StorageEngine& storage)
    : core_(std::move(options), env, transport, storage),
      peers_(core_),
      replication_(core_, peers_),
      catalog_(core_, peers_, replication_),
      joining_(core_, peers_, catalog_),
      forwarding_(core_, peers_),
      items_(core_, replication_) {
  // In this order. Either order gives the same result today: replication's part only touches the
  // outbox, synchronous writes and the batch, and joining's only starts or stops a pull (which
  // touches neither); a subscriber that did more would have to say where it goes.
  catalog_.Subscribe([this](const KeygroupChange& c) { replication_.OnKeygroupChanged(c); });
  catalog_.Subscribe([this](const KeygroupChange& c) { joining_.OnKeygroupChanged(c); });
}

core::Status Node::Start() {
  auto& keygroups = core_.keygroups();
  HybridClock& clock = core_.clock();
  LoadVisitor visitor;
  visitor.keygroup = [&](KeygroupRecord&& rec) {
    Keygroup& kg = keygroups[rec.meta.name()];
    kg.meta = std::move(rec.meta);
    kg.replica = !kg.meta.deleted() && IsReplicaIn(kg.meta, core_.id());
    kg.ready = kg.replica && rec.ready;
    clock.Observe(Version::FromProto(kg.meta.version()));
  };
  visitor.item = [&](const std::string& keygroup, const std::string& key, StoredItem&& item) {
    clock.Observe(item.version);
    keygroups[keygroup].items[key] = std::move(item);  // each key is loaded once
  };
  visitor.outbox = [this](OutboxRecord&& rec) { replication_.Load(std::move(rec)); };
  visitor.function = [this](const std::string& name, std::string&& bytes) {
    proto::FunctionSpec spec;
    if (spec.ParseFromString(bytes)) {
      saved_functions_.push_back(std::move(spec));
    } else {
      core_.Log(core::LogLevel::kWarn, "stored function '{}' does not parse; skipped", name);
    }
  };
  ENOKI_RETURN_IF_ERROR(core_.storage().Load(visitor));
  for (auto& [name, kg] : keygroups) {
    if (kg.replica && !kg.ready) joining_.Pull(kg);
    replication_.DropDrainedItems(kg);
  }
  replication_.Start();
  peers_.Start();
  core_.RequestFlush();  // what loading queued
  core_.Log(core::LogLevel::kInfo, "started: {} keygroups, {} outbox entries", keygroups.size(),
            OutboxSize());
  return core::Status::Ok();
}

size_t Node::OutboxSize() const { return replication_.OutboxSize(); }

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
  core_.RequestFlush();
  Dispatch(std::move(request), caller, /*forwarded=*/false,
           [this, client](proto::Response&& response) {
             core_.transport().ReplyToClient(client, response);
           });
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
  forwarding_.At(target, std::move(request), timeout, std::move(done));
}

void Node::Dispatch(proto::Request&& request, const net::Caller& caller, bool forwarded,
                    Done done) {
  proto::Response response = ResponseTo(request, core_.id());
  const std::string& self = core_.id();
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
    case proto::Request::kSetLink:
      return core_.Fail(done, std::move(response),
                        core::Status::InvalidArgument(
                            "set_link is served by a real node's transport, not by node " + self));
    case proto::Request::OP_NOT_SET:
      break;
  }
  core_.Fail(done, std::move(response),
             core::Status::InvalidArgument("request names no operation"));
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

// ---- Peer messages ---------------------------------------------------------------------------

void Node::OnPeerMessage(proto::PeerMessage&& msg) {
  core_.RequestFlush();
  const std::string from = msg.from();
  PeerTable::Peer* peer = peers_.Find(from);
  if (peer == nullptr) {
    core_.Log(core::LogLevel::kWarn, "message from unknown node '{}' dropped", from);
    return;
  }
  core::Status st = CheckPeerMessage(
      msg, {core_.options().max_value_bytes,
            core_.env().WallMicros() + std::chrono::duration_cast<std::chrono::microseconds>(
                                           core_.options().max_clock_ahead)
                                           .count()});
  if (!st.ok()) {
    // Logged once, then every 1000th, so that a flood does not flood the log.
    uint64_t n = ++refused_[from];
    if (n == 1 || n % 1000 == 0) {
      core_.Log(core::LogLevel::kWarn, "refused {} peer message(s) from '{}'; the last: {}", n,
                from, st.message());
    }
    return;
  }
  auto now = core_.env().Now();
  replication_.OnHeard(from, now);
  peer->last_heard = now;

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
      return peers_.OnPing(from, msg.ping());
    case proto::PeerMessage::kPong:
      return peers_.OnPong(*peer, msg.pong(), now);
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
             core_.Send(from, std::move(reply));
           });
}

}  // namespace enoki::node
