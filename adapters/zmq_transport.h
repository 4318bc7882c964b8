// ZmqTransport: the Transport over ZeroMQ. A node binds one ROUTER socket at its listen endpoint;
// clients connect DEALER sockets to it, and so does every peer: to send to node X, a node uses a
// DEALER connected to X's ROUTER (connected at start-up, ZMQ_IMMEDIATE so that nothing queues for a
// peer that is down). Replies to clients go back through the ROUTER; nodes never reply to each
// other through it, every node-to-node message is one-way.
//
// Membership (SetPeer) changes the peers while the node runs: a new member is connected to, one
// that left is forgotten. A member without an endpoint (behind NAT: it connects out, nobody can
// connect to it) is sent to over the connection it opened to this node: the ROUTER learns its
// routing id from its first authenticated peer message (its pings, every ping interval), and
// its own DEALER reads what comes back.
//
// Frames: [routing id][Envelope]. A message that is not exactly that, or does not parse, is
// answered with an INVALID_ARGUMENT Response (id 0) and dropped; the node never sees it.
//
// For emulation, the transport is also the user-space link shaper: messages to a peer with a
// link (SetLink, ZmqTransportOptions::links) wait on the event loop's timers until shortly
// (kDeliveryLead) before the link model says they arrive, then go out over loopback stamped with
// that time (Envelope.deliver_at_ns); a receiving transport holds a stamped message until then.
// A link to a peer on another host (SetLink with stamped false: the cluster mode, on top of a
// real network) sends at the arrival time instead, unstamped: the two hosts' clocks differ.
// Every response carries the time it was sent (Envelope.sent_at_ns), for emulated clients.
//
// Some requests are answered here rather than by the node (Serve): what lies beside it in the
// real world, such as the shaper's links (set_link) and how the process kept up (loop_stats:
// adapters/loop_stats.h; a stamped message handed on after its arrival time counts in the loop's
// delivery lateness), and what RealNode adds (the trace, its clock).
//
// Security (ZmqTransportOptions::security): the listen endpoint speaks CURVE only, and ZAP
// (adapters/zap.h) admits only the peers' and the clients' public keys; every message then carries
// who sent it. A peer message is taken only on a connection authenticated with the key of the peer
// it names; a client's request only when its permissions in the access file allow it
// (adapters/access.h), else PERMISSION_DENIED. The node's own processes (its HTTP gateway, its
// process functions' workers) reach it on a second endpoint, a Unix socket in a folder only the
// node's user may enter, without CURVE. docs/security.md has the whole model.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "adapters/access.h"
#include "adapters/curve.h"
#include "adapters/event_loop.h"
#include "adapters/loop_stats.h"
#include "adapters/zap.h"
#include "core/status.h"
#include "net/link_model.h"
#include "net/transport.h"

namespace enoki::adapters {

struct TransportSecurity {
  KeyPair own;                                   // this node's key pair
  std::map<std::string, std::string> peer_keys;  // peer id -> public key (every peer has one)
  std::map<std::string, AccessEntry> clients;    // client name -> key and permissions (SetClients)
  // ipc:// endpoint, without CURVE, for this host's own processes; empty: none.
  std::string local_endpoint;
};

struct ZmqTransportOptions {
  std::string self;                            // this node's id
  std::string listen;                          // e.g. tcp://127.0.0.1:7001
  std::map<std::string, std::string> peers;    // node id -> endpoint
  size_t max_message_bytes = 4 << 20;          // larger frames are refused by ZeroMQ
  std::map<std::string, net::LinkSpec> links;  // peers whose messages the shaper holds back
  std::optional<TransportSecurity> security;   // none: plain ZeroMQ, anyone may connect
  // Clients refused while this many connections are open (peers and the local endpoint are
  // always admitted); 0: no cap. With a cap, a node without security also runs a ZAP handler,
  // and the memory of closed connections is given back to the system (OnConnectionClosed).
  size_t max_clients = 0;
};

class ZmqTransport : public net::Transport {
 public:
  ZmqTransport(zmq::context_t& context, EventLoop& loop, ZmqTransportOptions options);
  // Binds the listen endpoint and registers with the loop. Fails if the address is taken.
  [[nodiscard]] core::Status Start();

  // Without a handler, only the services (Serve) answer requests; peer messages are dropped.
  void SetHandler(net::MessageHandler* handler) override { handler_ = handler; }
  bool SendToPeer(const std::string& to, proto::PeerMessage msg) override;
  void ReplyToClient(const net::ClientId& client, proto::Response response) override;
  void SetPeer(const proto::Member& member) override;

  // The endpoint actually bound (resolves a wildcard port such as tcp://127.0.0.1:*).
  const std::string& bound_endpoint() const { return bound_; }
  // Where this host's own processes reach the node: the local endpoint with security, else the
  // bound one.
  const std::string& local_endpoint() const {
    return options_.security ? options_.security->local_endpoint : bound_;
  }

  // The link shaper: from now on, messages to `peer` (a configured peer) are held back for what
  // the link model draws (delay, jitter, rate), dropped as its loss or a cut says, and sent in
  // order. Messages already held keep their time, but one that is due (within kDeliveryLead)
  // while the link is cut is dropped. A peer without a link gets its messages at once.
  // `stamped`: the peer shares this host's monotonic clock (emulation), so messages leave
  // kDeliveryLead ahead of their arrival, stamped with it; else (a peer on another host) they
  // leave at their arrival time.
  [[nodiscard]] core::Status SetLink(const std::string& peer, const net::LinkSpec& spec,
                                     bool stamped);
  // With security: the clients admitted from now on, and what each may do (the access file read
  // again). A client's open connection keeps its name: it gets the new permissions, or nothing
  // when it is gone. Fails, changing nothing, when two keys collide.
  [[nodiscard]] core::Status SetClients(const std::map<std::string, AccessEntry>& clients);
  // Requests of kind `op` are answered by `serve` from now on, after the access check, instead of
  // by the node. `serve` fills the result of the response, whose id and served_by are set; the
  // Status it returns, when not ok, is the answer's code and error. One service per kind.
  using Service = std::function<core::Status(const proto::Request&, proto::Response&)>;
  void Serve(proto::Request::OpCase op, Service serve);
  // Messages the shaper dropped (loss, cut) so far.
  uint64_t shaper_drops() const { return shaper_drops_; }

 private:
  void OnRouterReadable();
  // Messages on the connection to `peer`: a peer sends over it when this node has no endpoint.
  void OnPeerSocketReadable(const std::string& peer, zmq::socket_t& socket);
  // One received frame, from `client` (empty: over a connection to a peer) authenticated as
  // `sender`: parsed, held until its stamped arrival time, dispatched.
  void Receive(const net::ClientId& client, const std::string& sender, zmq::message_t& payload);
  // Answers a frame that is no valid request with `message` (logged, rate-limited: a client can
  // send any number of them).
  void SendError(const net::ClientId& client, const std::string& message,
                 proto::Code code = proto::INVALID_ARGUMENT);
  // Answers a request with `why` (logged, rate-limited).
  void Refuse(const net::ClientId& client, const proto::Request& request, const core::Status& why);
  // Answers a request whose `to` names another node with FAILED_PRECONDITION, naming both.
  void RefuseMisaddressed(const net::ClientId& client, const proto::Request& request);
  // Creates the DEALER socket to peer `to`; throws zmq::error_t for a bad endpoint.
  void ConnectPeer(const std::string& to, const std::string& endpoint);
  // Sends a frame to `peer`: over the connection to it, or over the one it opened (no endpoint).
  bool SendFrame(const std::string& peer, const std::string& bytes);
  // Whether a connection authenticated as `sender` is peer `peer`'s: the client of its name with
  // its key (it connected as the client that joins, before it was a member here).
  bool IsPeerAsClient(const std::string& sender, const std::string& peer) const;
  // Closes the connection to a member that left and stops admitting its key.
  void ForgetPeer(const std::string& id);
  // Sends the held messages to `peer` that are due (within kDeliveryLead), and waits for the next.
  void ReleaseDue(const std::string& peer);
  // Hands a received message to the handler (or to its Service). `sender`: who the
  // connection authenticated as with security ("node:ID", "client:NAME", "local"); empty without.
  void Dispatch(const net::ClientId& client, const std::string& sender, proto::Envelope& envelope);
  // Dispatches a message stamped to arrive at `due`, counting how late it is in the loop's
  // delivery lateness.
  void DispatchShaped(core::TimePoint due, const net::ClientId& client, const std::string& sender,
                      proto::Envelope& envelope);
  // Hands on the held messages that are due, in order, and sets the timer for the next.
  void DeliverDue();
  // A connection to the router closed: gives the memory freed by closed connections back to the
  // system once enough have closed (see the .cc for why it is needed).
  void OnConnectionClosed();
  // Sets the one timer that delivers the held messages when the first is due.
  void ArmDelivery();

  struct ShapedLink {
    net::LinkModel model;
    std::deque<std::pair<core::TimePoint, std::string>> held;  // arrival time, frame; in order
    bool timer_set = false;
    core::Duration lead{0};  // how long before its arrival a message leaves (0: unstamped)
  };

  zmq::context_t& context_;
  EventLoop& loop_;
  ZmqTransportOptions options_;
  // Declared before the router, so that it is gone only after the router (a CURVE handshake
  // without a ZAP handler would admit any key).
  std::optional<ZapHandler> zap_;
  zmq::socket_t router_;
  std::map<std::string, std::unique_ptr<zmq::socket_t>> peer_sockets_;
  // Peers without an endpoint: the routing id of the connection each opened to this node.
  std::map<std::string, net::ClientId> routes_;
  // Members that left, forgotten after net::kLeftGrace, each with the number of its leave.
  std::map<std::string, uint64_t> leaving_;
  uint64_t leaves_ = 0;
  net::MessageHandler* handler_ = nullptr;
  std::string bound_;
  std::string buffer_;  // reused for serialization
  std::map<proto::Request::OpCase, Service> services_;
  std::map<std::string, ShapedLink> shaped_;
  uint64_t shaper_drops_ = 0;
  // Received messages stamped with a later arrival time, by that time.
  struct Arriving {
    net::ClientId client;
    std::string sender;
    proto::Envelope envelope;
  };
  std::multimap<core::TimePoint, Arriving> arriving_;
  core::RateLimitedLog refused_peer_messages_;
  core::RateLimitedLog refused_requests_;
  // The clients of the access file, by sender ("client:NAME"): what each may do, and who it is to
  // the node (its name and quota).
  struct Admitted {
    Permissions permissions;
    net::Caller caller;
  };
  std::map<std::string, Admitted> clients_;
  core::TimerId delivery_timer_{};
  bool delivery_armed_ = false;
  size_t closed_since_trim_ = 0;  // connections closed since memory was last given back
  bool trim_armed_ = false;
  LoopStats loop_stats_;
};

}  // namespace enoki::adapters
