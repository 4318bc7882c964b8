// ZmqTransport: the Transport over ZeroMQ. A node binds one ROUTER socket at its listen endpoint;
// clients connect DEALER sockets to it, and so does every peer: to send to node X, a node uses a
// DEALER connected to X's ROUTER (connected at start-up, ZMQ_IMMEDIATE so that nothing queues for a
// peer that is down). Replies to clients go back through the ROUTER; nodes never reply to each
// other through it, every node-to-node message is one-way.
//
// Frames: [routing id][Envelope]. A message that is not exactly that, or does not parse, is
// answered with an INVALID_ARGUMENT Response (id 0) and dropped; the node never sees it.
//
// For emulation, the transport is also the user-space link shaper: messages to a peer with a
// link (SetLink, ZmqTransportOptions::links) wait on the event loop's timers until shortly
// (kDeliveryLead) before the link model says they arrive, then go out over loopback stamped with
// that time (Envelope.deliver_at_ns); a receiving transport holds a stamped message until then.
// Every response carries the time it was sent (Envelope.sent_at_ns), for emulated clients.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "adapters/event_loop.h"
#include "core/status.h"
#include "net/link_model.h"
#include "net/transport.h"

namespace enoki::adapters {

struct ZmqTransportOptions {
  std::string self;                            // this node's id
  std::string listen;                          // e.g. tcp://127.0.0.1:7001
  std::map<std::string, std::string> peers;    // node id -> endpoint
  size_t max_message_bytes = 4 << 20;          // larger frames are refused by ZeroMQ
  std::map<std::string, net::LinkSpec> links;  // peers whose messages the shaper holds back
};

class ZmqTransport : public net::Transport {
 public:
  ZmqTransport(zmq::context_t& context, EventLoop& loop, ZmqTransportOptions options);
  // Binds the listen endpoint and registers with the loop. Fails if the address is taken.
  [[nodiscard]] core::Status Start();

  void SetHandler(net::MessageHandler* handler) override { handler_ = handler; }
  bool SendToPeer(const std::string& to, const proto::PeerMessage& msg) override;
  void ReplyToClient(const net::ClientId& client, const proto::Response& response) override;

  // The endpoint actually bound (resolves a wildcard port such as tcp://127.0.0.1:*).
  const std::string& bound_endpoint() const { return bound_; }

  // The link shaper: from now on, messages to `peer` (a configured peer) are held back for what
  // the link model draws (delay, jitter, rate), dropped as its loss or a cut says, and sent in
  // order. Messages already held keep their time, but one that is due (within kDeliveryLead)
  // while the link is cut is dropped. A peer without a link gets its messages at once.
  [[nodiscard]] core::Status SetLink(const std::string& peer, const net::LinkSpec& spec);
  // Messages the shaper dropped (loss, cut) so far.
  uint64_t shaper_drops() const { return shaper_drops_; }

 private:
  void OnRouterReadable();
  void SendError(const net::ClientId& client, const std::string& message);
  // Answers a request whose `to` names another node with FAILED_PRECONDITION, naming both.
  void RefuseMisaddressed(const net::ClientId& client, const proto::Request& request);
  // Answers a SetLinkRequest (the emulation orchestrator changing a link during a run).
  void ServeSetLink(const net::ClientId& client, const proto::Request& request);
  // Creates the DEALER socket to peer `to`; throws zmq::error_t for a bad endpoint.
  void ConnectPeer(const std::string& to, const std::string& endpoint);
  bool SendNow(zmq::socket_t& socket, const std::string& bytes);
  // Sends the held messages to `peer` that are due (within kDeliveryLead), and waits for the next.
  void ReleaseDue(const std::string& peer);
  // Hands a received message to the handler (or serves it, for set_link).
  void Dispatch(const net::ClientId& client, proto::Envelope& envelope);
  // Hands on the held messages that are due, in order, and sets the timer for the next.
  void DeliverDue();
  // Sets the one timer that delivers the held messages when the first is due.
  void ArmDelivery();

  struct ShapedLink {
    net::LinkModel model;
    std::deque<std::pair<core::TimePoint, std::string>> held;  // arrival time, frame; in order
    bool timer_set = false;
  };

  zmq::context_t& context_;
  EventLoop& loop_;
  ZmqTransportOptions options_;
  zmq::socket_t router_;
  std::map<std::string, std::unique_ptr<zmq::socket_t>> peer_sockets_;
  net::MessageHandler* handler_ = nullptr;
  std::string bound_;
  std::string buffer_;  // reused for serialization
  std::map<std::string, ShapedLink> shaped_;
  uint64_t shaper_drops_ = 0;
  // Received messages stamped with a later arrival time, by that time.
  std::multimap<core::TimePoint, std::pair<net::ClientId, proto::Envelope>> arriving_;
  core::TimerId delivery_timer_{};
  bool delivery_armed_ = false;
};

}  // namespace enoki::adapters
