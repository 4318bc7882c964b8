// ZmqTransport: the Transport over ZeroMQ. A node binds one ROUTER socket at its listen endpoint;
// clients connect DEALER sockets to it, and so does every peer: to send to node X, a node uses a
// DEALER connected to X's ROUTER (connected at start-up, ZMQ_IMMEDIATE so that nothing queues for a
// peer that is down). Replies to clients go back through the ROUTER; nodes never reply to each
// other through it, every node-to-node message is one-way.
//
// Frames: [routing id][Envelope]. A message that is not exactly that, or does not parse, is
// answered with an INVALID_ARGUMENT Response (id 0) and dropped; the node never sees it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "core/status.h"
#include "net/event_loop.h"
#include "net/transport.h"

namespace enoki::net {

struct ZmqTransportOptions {
  std::string self;                          // this node's id
  std::string listen;                        // e.g. tcp://127.0.0.1:7001
  std::map<std::string, std::string> peers;  // node id -> endpoint
  size_t max_message_bytes = 4 << 20;        // larger frames are refused by ZeroMQ
};

class ZmqTransport : public Transport {
 public:
  ZmqTransport(zmq::context_t& context, EventLoop& loop, ZmqTransportOptions options);
  // Binds the listen endpoint and registers with the loop. Fails if the address is taken.
  [[nodiscard]] core::Status Start();

  void SetHandler(MessageHandler* handler) override { handler_ = handler; }
  bool SendToPeer(const std::string& to, const proto::PeerMessage& msg) override;
  void ReplyToClient(const ClientId& client, const proto::Response& response) override;

  // The endpoint actually bound (resolves a wildcard port such as tcp://127.0.0.1:*).
  const std::string& bound_endpoint() const { return bound_; }

 private:
  void OnRouterReadable();
  void SendError(const ClientId& client, const std::string& message);
  // Creates the DEALER socket to peer `to`; throws zmq::error_t for a bad endpoint.
  void ConnectPeer(const std::string& to, const std::string& endpoint);

  zmq::context_t& context_;
  EventLoop& loop_;
  ZmqTransportOptions options_;
  zmq::socket_t router_;
  std::map<std::string, std::unique_ptr<zmq::socket_t>> peer_sockets_;
  MessageHandler* handler_ = nullptr;
  std::string bound_;
  std::string buffer_;  // reused for serialization
};

}  // namespace enoki::net
