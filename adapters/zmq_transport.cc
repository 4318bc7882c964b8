// ZeroMQ transport: ROUTER in, one DEALER per peer out.
#include "adapters/zmq_transport.h"

#include <dlfcn.h>
#include <malloc.h>

#include <spdlog/spdlog.h>

#include "adapters/client.h"
#include "net/codec.h"

namespace enoki::adapters {
namespace {

// `text` for a log line: at most 64 characters, anything but printable ASCII as '?'.
std::string Printable(const std::string& text) {
  std::string out = text.substr(0, 64);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return text.size() > 64 ? out + "..." : out;
}

// Gives the memory the allocator holds free back to the system. The programs (`enoki`) run on
// jemalloc (CMakeLists.txt: enoki_use_allocator), which keeps freed pages for a while and purges
// them when its arenas are next used: asked, it purges every arena at once. Where the process
// runs on glibc's malloc (the tests, the sanitizer build), malloc_trim does it: glibc gives an
// arena's memory back by itself only from the top of its heap.
void GiveFreedMemoryBack() {
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  static const auto mallctl = reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl != nullptr) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge" (jemalloc(3)): 4096 stands for every arena.
    if (mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0) == 0) return;
  }
  ::malloc_trim(0);
}

}  // namespace

ZmqTransport::ZmqTransport(zmq::context_t& context, EventLoop& loop, ZmqTransportOptions options)
    : context_(context),
      loop_(loop),
      options_(std::move(options)),
      router_(context_, zmq::socket_type::router),
      loop_stats_(loop) {
  // The emulation orchestrator changing a link during a run.
  Serve(proto::Request::kSetLink, [this](const proto::Request& request, proto::Response&) {
    auto spec = net::LinkSpec::Parse(request.set_link().spec());
    return spec.ok() ? SetLink(request.set_link().peer(), *spec, !request.set_link().over_network())
                     : spec.status();
  });
  // The test bed, at a run's start and end: how this process kept up.
  Serve(proto::Request::kLoopStats, [this](const proto::Request& request, proto::Response& out) {
    *out.mutable_loop_stats() = loop_stats_.Take(request.loop_stats().reset());
    return core::Status::Ok();
  });
}

void ZmqTransport::Serve(proto::Request::OpCase op, Service serve) {
  services_[op] = std::move(serve);
}

core::Status ZmqTransport::Start() {
  if (options_.security) {
    for (const auto& [id, endpoint] : options_.peers) {
      if (!options_.security->peer_keys.contains(id)) {
        return core::Status::InvalidArgument("peer '" + id +
                                             "' has no --peer-key: a node with a "
                                             "key talks only to peers it can authenticate");
      }
    }
  }
  if (options_.security || options_.max_clients > 0) {
    // Before anything is bound: without a ZAP handler, libzmq lets every CURVE key in.
    zap_.emplace(context_, loop_);
    ENOKI_RETURN_IF_ERROR(zap_->Start());
    if (options_.security) ENOKI_RETURN_IF_ERROR(SetClients(options_.security->clients));
    if (options_.max_clients > 0) {
      ENOKI_RETURN_IF_ERROR(
          zap_->WatchConnections(router_, options_.max_clients, [this] { OnConnectionClosed(); }));
    }
  }
  try {
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.max_message_bytes));
    router_.set(zmq::sockopt::sndhwm, 1000);
    router_.set(zmq::sockopt::rcvhwm, 1000);
    // A connection that never finishes its handshake holds a descriptor, and a place under the
    // cap of connections, this long at most (ZeroMQ's default: 30 s).
    router_.set(zmq::sockopt::handshake_ivl, 5000);
    if (options_.security) {
      // Options apply to the endpoints bound after them: the local one without CURVE first.
      router_.set(zmq::sockopt::zap_domain, ZapHandler::kLocalDomain);
      if (!options_.security->local_endpoint.empty()) {
        router_.bind(options_.security->local_endpoint);
      }
      router_.set(zmq::sockopt::curve_server, 1);
      router_.set(zmq::sockopt::curve_secretkey, options_.security->own.secret_key);
      router_.set(zmq::sockopt::zap_domain, ZapHandler::kCurveDomain);
    } else if (options_.max_clients > 0) {
      // ZAP sees NULL handshakes too once the endpoint has a domain: for the cap.
      router_.set(zmq::sockopt::zap_domain, ZapHandler::kPlainDomain);
    }
    router_.bind(options_.listen);
    bound_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return core::Status::Unavailable("cannot listen on " + options_.listen + ": " + e.what());
  }
  loop_.AddSocket(router_, [this] { OnRouterReadable(); });
  // Connects to every peer now, so that a bad endpoint is an error at start-up, not later.
  for (const auto& [id, endpoint] : options_.peers) {
    try {
      ConnectPeer(id, endpoint);
    } catch (const zmq::error_t& e) {
      return core::Status::InvalidArgument("peer " + id + " at '" + endpoint + "': " + e.what());
    }
  }
  for (const auto& [peer, spec] : options_.links) ENOKI_RETURN_IF_ERROR(SetLink(peer, spec, true));
  return core::Status::Ok();
}

core::Status ZmqTransport::SetClients(const std::map<std::string, AccessEntry>& clients) {
  if (!options_.security) {
    return core::Status::FailedPrecondition("a node without keys admits everyone");
  }
  std::map<std::string, std::string> keys;
  for (const auto& [id, key] : options_.security->peer_keys) {
    if (!keys.emplace(key, "node:" + id).second) {
      return core::Status::InvalidArgument("peer '" + id + "' has the key of " + keys.at(key) +
                                           ": every key must be its own");
    }
  }
  std::map<std::string, Admitted> admitted;
  for (const auto& [name, entry] : clients) {
    if (entry.public_key.empty()) continue;  // a bearer token or public functions: HTTP only
    // A node that joins connects as the client of its name (role `join`) until it is a member:
    // its key then stands for the node.
    auto [key, added] = keys.emplace(entry.public_key, "client:" + name);
    if (!added && key->second != "node:" + name) {
      return core::Status::InvalidArgument("client '" + name + "' has the key of " +
                                           keys.at(entry.public_key) +
                                           ": every key must be its own");
    }
    admitted.emplace("client:" + name,
                     Admitted{entry.permissions, {name, entry.public_key, entry.quota}});
  }
  zap_->SetKeys(std::move(keys));
  clients_ = std::move(admitted);
  if (&clients != &options_.security->clients) options_.security->clients = clients;
  return core::Status::Ok();
}

core::Status ZmqTransport::SetLink(const std::string& peer, const net::LinkSpec& spec,
                                   bool stamped) {
  if (!options_.peers.contains(peer)) {
    return core::Status::InvalidArgument("link to '" + peer + "': not a peer of " + options_.self);
  }
  // A new link's own random stream is drawn from the process's (seeded by enoki node --seed).
  auto link = shaped_.find(peer);
  if (link == shaped_.end()) {
    link = shaped_.try_emplace(peer).first;
    link->second.model = net::LinkModel({}, loop_.Rng()());
  }
  link->second.model.Set(spec);
  link->second.lead = stamped ? net::kDeliveryLead : core::Duration(0);
  return core::Status::Ok();
}

void ZmqTransport::OnRouterReadable() {
  // Reads at most this many messages per round so that timers and the end of the round (the
  // node's flush) keep running.
  constexpr int kMaxPerRound = 512;
  for (int n = 0; n < kMaxPerRound; ++n) {
    zmq::message_t id;
    if (!router_.recv(id, zmq::recv_flags::dontwait)) return;
    net::ClientId client(static_cast<const char*>(id.data()), id.size());
    // The frames of one message arrive together: reading them never blocks.
    int frames = 0;
    zmq::message_t payload;
    for (bool more = id.more(); more; more = payload.more()) {
      (void)router_.recv(payload, zmq::recv_flags::none);
      ++frames;
    }
    if (frames != 1) {
      SendError(client, "malformed message: expected 1 frame after the routing id, got " +
                            std::to_string(frames));
      continue;
    }
    // Who the connection authenticated as: ZAP's user id, set on every connection with security
    // (one without it would mean a handshake ZAP never saw: refused).
    std::string sender;
    if (options_.security) {
      const char* user = zmq_msg_gets(payload.handle(), "User-Id");
      if (user == nullptr || *user == '\0') {
        SendError(client, "refused: the connection is not authenticated", proto::PERMISSION_DENIED);
        continue;
      }
      sender = user;
    }
    Receive(client, sender, payload);
  }
}

void ZmqTransport::OnPeerSocketReadable(const std::string& peer, zmq::socket_t& socket) {
  constexpr int kMaxPerRound = 512;
  for (int n = 0; n < kMaxPerRound; ++n) {
    zmq::message_t m;
    if (!socket.recv(m, zmq::recv_flags::dontwait)) return;
    // A peer reached at its endpoint sends over this connection only when this node is behind
    // NAT to it (no endpoint of its own); anything else here is its error reply to a frame.
    // CURVE authenticated the peer as the server of this connection.
    Receive({}, options_.security ? "node:" + peer : std::string(), m);
  }
}

void ZmqTransport::Receive(const net::ClientId& client, const std::string& sender,
                           zmq::message_t& payload) {
  proto::Envelope envelope;
  if (!envelope.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    if (client.empty()) {
      WarnLimited(refused_peer_messages_, loop_.Now(),
                  "dropped a malformed message (" + std::to_string(payload.size()) +
                      " bytes) from peer " + sender);
      return;
    }
    SendError(client,
              "malformed message: not an Envelope (" + std::to_string(payload.size()) + " bytes)");
    return;
  }
  if (client.empty() && !envelope.has_peer()) {
    if (envelope.has_response()) {
      WarnLimited(
          refused_peer_messages_, loop_.Now(),
          "a peer answered a frame of this node with: " + Printable(envelope.response().error()));
    }
    return;
  }
  // Sent ahead by a shaper: held until its arrival time, no later than a shaper's lead from now
  // (a stamp from a wrong clock cannot hold a message for long). Messages leave in the order
  // of their times (a multimap keeps equal times in the order they came), also when this loop
  // falls behind: one that is due already waits for those due before it.
  auto now = loop_.Now();
  core::TimePoint due = std::min(core::TimePoint(core::Duration(envelope.deliver_at_ns())),
                                 now + 2 * net::kDeliveryLead);
  if (due <= now && arriving_.empty()) {
    DispatchShaped(due, client, sender, envelope);
    return;
  }
  arriving_.emplace(due, Arriving{client, sender, std::move(envelope)});
  DeliverDue();
}

void ZmqTransport::DeliverDue() {
  auto now = loop_.Now();
  while (!arriving_.empty() && arriving_.begin()->first <= now) {
    auto node = arriving_.extract(arriving_.begin());
    DispatchShaped(node.key(), node.mapped().client, node.mapped().sender, node.mapped().envelope);
  }
  ArmDelivery();
}

void ZmqTransport::DispatchShaped(core::TimePoint due, const net::ClientId& client,
                                  const std::string& sender, proto::Envelope& envelope) {
  // An unstamped message (a client's, an unshaped peer's) has no arrival time to be late for.
  if (envelope.deliver_at_ns() > 0) loop_.delivery_lateness().Record(loop_.Now() - due);
  Dispatch(client, sender, envelope);
}

void ZmqTransport::ArmDelivery() {
  if (delivery_armed_) loop_.Cancel(delivery_timer_);
  delivery_armed_ = !arriving_.empty();
  if (!delivery_armed_) return;
  delivery_timer_ = loop_.Schedule(arriving_.begin()->first - loop_.Now(), [this] {
    delivery_armed_ = false;
    DeliverDue();
  });
}

void ZmqTransport::OnConnectionClosed() {
  // A connection holds tens of kB (ZeroMQ's pipes and I/O buffers), allocated on ZeroMQ's I/O
  // thread. When it closes, the allocator keeps what it freed: glibc gives an arena's memory back
  // to the system only from the top of its heap, and the connections that closed leave holes
  // below those still open. A node (on glibc) that 3,000 connections had taken from 18 to 129 MB
  // stayed there after they closed, and every new burst of connections took it higher (239 MB
  // after three: bench/connections_memory.sh); malloc_trim(0) took it back to 18 MB, which is no
  // leak. jemalloc gives freed pages back only as its arenas are used again. So once
  // kClosedPerTrim connections have closed, a second later (to take a burst of closings together),
  // the allocator is asked to give back its free pages (GiveFreedMemoryBack). That walks every
  // arena on the loop's thread (with glibc, 13 to 35 ms after 3,000 connections had closed, on the
  // 2-core development machine; less for fewer), hence not for each connection.
  constexpr size_t kClosedPerTrim = 64;
  constexpr auto kTrimDelay = std::chrono::seconds(1);
  if (++closed_since_trim_ < kClosedPerTrim || trim_armed_) return;
  trim_armed_ = true;
  loop_.Schedule(kTrimDelay, [this] {
    trim_armed_ = false;
    closed_since_trim_ = 0;
    auto start = loop_.Now();
    GiveFreedMemoryBack();
    spdlog::debug("gave freed memory back to the system in {:.1f} ms",
                  core::ToMillis(loop_.Now() - start));
  });
}

void ZmqTransport::Dispatch(const net::ClientId& client, const std::string& sender,
                            proto::Envelope& envelope) {
  switch (envelope.kind_case()) {
    case proto::Envelope::kRequest: {
      if (!envelope.request().to().empty() && envelope.request().to() != options_.self) {
        RefuseMisaddressed(client, envelope.request());
        break;
      }
      // A client may do what its permissions say, within its quota (peers and the local
      // endpoint: everything, unlimited).
      static const net::Caller kUnlimited;
      const net::Caller* caller = &kUnlimited;
      // A connection authenticated as a node before it left (ZAP checks a key only at the
      // handshake) has no rights once the node is forgotten.
      if (options_.security && sender.starts_with("node:") &&
          !options_.peers.contains(sender.substr(5))) {
        Refuse(client, envelope.request(),
               core::Status::PermissionDenied("node '" + sender.substr(5) +
                                              "' is no longer a member"));
        break;
      }
      if (options_.security && sender.rfind("client:", 0) == 0) {
        auto c = clients_.find(sender);
        core::Status allowed =
            c == clients_.end()
                ? core::Status::PermissionDenied("client '" + sender.substr(7) +
                                                 "' is no longer in the node's access file")
                : Authorize(sender.substr(7), c->second.permissions, envelope.request());
        if (!allowed.ok()) {
          Refuse(client, envelope.request(), allowed);
          break;
        }
        caller = &c->second.caller;
      }
      if (auto service = services_.find(envelope.request().op_case()); service != services_.end()) {
        proto::Response response;
        response.set_id(envelope.request().id());
        response.set_served_by(options_.self);
        if (core::Status st = service->second(envelope.request(), response); !st.ok()) {
          response.clear_result();
          response.set_code(net::CodeToWire(st.code()));
          response.set_error(st.message());
        }
        ReplyToClient(client, std::move(response));
        break;
      }
      if (handler_ == nullptr) {
        // Only its services answer (a process that is no node: a cluster run's client host).
        const auto* op =
            proto::Request::descriptor()->FindFieldByNumber(envelope.request().op_case());
        Refuse(client, envelope.request(),
               core::Status::InvalidArgument(options_.self + " is no node: it serves no " +
                                             (op == nullptr ? "such" : op->name()) + " request"));
        break;
      }
      handler_->OnClientRequest(client, *caller, std::move(*envelope.mutable_request()));
      break;
    }
    case proto::Envelope::kPeer:
      if (envelope.peer().from().empty() || envelope.peer().body_case() == 0) {
        spdlog::warn("dropping peer message without sender or body");
        break;
      }
      if (options_.security && ((sender != "node:" + envelope.peer().from() &&
                                 !IsPeerAsClient(sender, envelope.peer().from())) ||
                                !options_.peers.contains(envelope.peer().from()))) {
        WarnLimited(refused_peer_messages_, loop_.Now(),
                    "refused a peer message naming '" + Printable(envelope.peer().from()) +
                        "' as its sender on a connection "
                        "authenticated as " +
                        sender);
        break;
      }
      // A peer without an endpoint is reached over the connection it opened to this node.
      if (!client.empty()) {
        auto peer = options_.peers.find(envelope.peer().from());
        if (peer != options_.peers.end() && peer->second.empty()) {
          routes_[envelope.peer().from()] = client;
        }
      }
      if (handler_ != nullptr) handler_->OnPeerMessage(std::move(*envelope.mutable_peer()));
      break;
    default:
      SendError(client, "malformed message: an Envelope must hold a request");
  }
}

bool ZmqTransport::IsPeerAsClient(const std::string& sender, const std::string& peer) const {
  if (sender != "client:" + peer) return false;
  auto client = clients_.find(sender);
  auto key = options_.security->peer_keys.find(peer);
  return client != clients_.end() && key != options_.security->peer_keys.end() &&
         client->second.caller.public_key == key->second;
}

void ZmqTransport::Refuse(const net::ClientId& client, const proto::Request& request,
                          const core::Status& why) {
  WarnLimited(refused_requests_, loop_.Now(), why.message());
  proto::Response response;
  response.set_id(request.id());
  response.set_served_by(options_.self);
  response.set_code(net::CodeToWire(why.code()));
  response.set_error(why.message());
  ReplyToClient(client, std::move(response));
}

void ZmqTransport::RefuseMisaddressed(const net::ClientId& client, const proto::Request& request) {
  std::string message = "request " + std::to_string(request.id()) + " is addressed to node '" +
                        request.to() + "' but reached node '" + options_.self + "' at " + bound_ +
                        ": the sender has a wrong endpoint for '" + request.to() + "'";
  WarnLimited(refused_requests_, loop_.Now(), message);
  proto::Response response;
  response.set_id(request.id());
  response.set_code(proto::FAILED_PRECONDITION);
  response.set_error(message);
  ReplyToClient(client, std::move(response));
}

void ZmqTransport::SendError(const net::ClientId& client, const std::string& message,
                             proto::Code code) {
  WarnLimited(refused_requests_, loop_.Now(), message);
  proto::Response response;
  response.set_code(code);
  response.set_error(message);
  ReplyToClient(client, std::move(response));
}

void ZmqTransport::ConnectPeer(const std::string& to, const std::string& endpoint) {
  auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  socket->set(zmq::sockopt::linger, 0);
  socket->set(zmq::sockopt::immediate, 1);
  socket->set(zmq::sockopt::sndhwm, 256);
  socket->set(zmq::sockopt::reconnect_ivl, 50);
  socket->set(zmq::sockopt::reconnect_ivl_max, 1000);
  if (options_.security) {
    UseClientKeys(*socket, {options_.security->own, options_.security->peer_keys.at(to)});
  }
  socket->connect(endpoint);
  zmq::socket_t* raw = socket.get();
  loop_.AddSocket(*raw, [this, raw, to] { OnPeerSocketReadable(to, *raw); });
  peer_sockets_.emplace(to, std::move(socket));
}

bool ZmqTransport::SendToPeer(const std::string& to, proto::PeerMessage msg) {
  if (!options_.peers.contains(to)) return false;
  net::EncodeEnvelope(msg, &buffer_);
  auto link = shaped_.find(to);
  if (link == shaped_.end()) return SendFrame(to, buffer_);
  ShapedLink& l = link->second;
  // An unshaped link (set back to empty) with nothing held sends at once, as no link does.
  if (l.held.empty() && l.model.spec() == net::LinkSpec{}) return SendFrame(to, buffer_);
  auto arrival = l.model.Arrival(loop_.Now(), buffer_.size());
  if (!arrival) {
    ++shaper_drops_;
    return true;  // lost on the way, as far as the sender can tell
  }
  if (l.lead > core::Duration(0)) {
    net::AppendEnvelopeTime(proto::Envelope::kDeliverAtNsFieldNumber, *arrival, &buffer_);
  }
  l.held.emplace_back(*arrival, buffer_);
  if (!l.timer_set) {
    l.timer_set = true;
    loop_.Schedule(*arrival - l.lead - loop_.Now(), [this, to] { ReleaseDue(to); });
  }
  return true;
}

void ZmqTransport::ReleaseDue(const std::string& peer) {
  auto link = shaped_.find(peer);
  if (link == shaped_.end()) return;  // a member that left: forgotten with what it held
  ShapedLink& l = link->second;
  l.timer_set = false;
  auto now = loop_.Now();
  while (!l.held.empty() && l.held.front().first - l.lead <= now) {
    if (l.model.spec().cut || !SendFrame(peer, l.held.front().second)) ++shaper_drops_;
    l.held.pop_front();
  }
  if (!l.held.empty()) {
    l.timer_set = true;
    loop_.Schedule(l.held.front().first - l.lead - now, [this, peer] { ReleaseDue(peer); });
  }
}

bool ZmqTransport::SendFrame(const std::string& peer, const std::string& bytes) {
  if (auto socket = peer_sockets_.find(peer); socket != peer_sockets_.end()) {
    return loop_.Send(*socket->second, zmq::buffer(bytes));
  }
  auto route = routes_.find(peer);
  if (route == routes_.end()) return false;  // it has not connected (yet)
  try {
    return loop_.Send(router_, zmq::buffer(route->second), zmq::send_flags::sndmore) &&
           loop_.Send(router_, zmq::buffer(bytes));
  } catch (const zmq::error_t&) {
    return false;
  }
}

void ZmqTransport::SetPeer(const proto::Member& member) {
  const std::string& id = member.id();
  if (id == options_.self) return;
  if (member.left()) {
    if (!options_.peers.contains(id) || leaving_.contains(id)) return;
    // Its own timer: one of an earlier leave (it joined again meanwhile) forgets nothing.
    uint64_t leave = ++leaves_;
    leaving_[id] = leave;
    loop_.Schedule(net::kLeftGrace, [this, id, leave] {
      auto it = leaving_.find(id);
      if (it == leaving_.end() || it->second != leave) return;
      leaving_.erase(it);
      ForgetPeer(id);
    });
    return;
  }
  leaving_.erase(id);
  auto known = options_.peers.find(id);
  bool same_key = true;
  if (options_.security) {
    auto key = options_.security->peer_keys.find(id);
    same_key = key != options_.security->peer_keys.end() && key->second == member.public_key();
  }
  if (known != options_.peers.end() && known->second == member.endpoint() && same_key) return;
  if (options_.security) {
    if (member.public_key().empty()) {
      spdlog::error("member {} has no public key: a node with keys cannot authenticate it", id);
      return;
    }
    std::string old_key = std::exchange(options_.security->peer_keys[id], member.public_key());
    if (auto st = SetClients(options_.security->clients); !st.ok()) {
      if (old_key.empty()) {
        options_.security->peer_keys.erase(id);
      } else {
        options_.security->peer_keys[id] = old_key;
      }
      spdlog::error("member {} not admitted: {}", id, st.message());
      return;
    }
  }
  options_.peers[id] = member.endpoint();
  if (auto socket = peer_sockets_.find(id); socket != peer_sockets_.end()) {
    loop_.RemoveSocket(std::move(socket->second));
    peer_sockets_.erase(socket);
  }
  routes_.erase(id);
  if (!member.endpoint().empty()) {
    try {
      ConnectPeer(id, member.endpoint());
    } catch (const zmq::error_t& e) {
      spdlog::error("member {} at '{}': {}", id, member.endpoint(), e.what());
      return;
    }
  }
  spdlog::info("peer {} {}", id,
               member.endpoint().empty() ? "is reached over the connection it opens"
                                         : "is at " + member.endpoint());
}

void ZmqTransport::ForgetPeer(const std::string& id) {
  options_.peers.erase(id);
  if (auto socket = peer_sockets_.find(id); socket != peer_sockets_.end()) {
    loop_.RemoveSocket(std::move(socket->second));
    peer_sockets_.erase(socket);
  }
  routes_.erase(id);
  shaped_.erase(id);
  if (options_.security && options_.security->peer_keys.erase(id) > 0) {
    if (auto st = SetClients(options_.security->clients); !st.ok()) {
      spdlog::error("the keys after member {} left: {}", id, st.message());
    }
  }
  spdlog::info("peer {} left the cluster: forgotten", id);
}

void ZmqTransport::ReplyToClient(const net::ClientId& client, proto::Response response) {
  net::EncodeEnvelope(response, options_.self, &buffer_);
  net::AppendEnvelopeTime(proto::Envelope::kSentAtNsFieldNumber, loop_.Now(), &buffer_);
  try {
    loop_.Send(router_, zmq::buffer(client), zmq::send_flags::sndmore);
    loop_.Send(router_, zmq::buffer(buffer_));
  } catch (const zmq::error_t& e) {
    spdlog::warn("reply to client dropped: {}", e.what());
  }
}

}  // namespace enoki::adapters
