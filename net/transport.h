// The Transport interface: how a node sends and receives messages, whatever carries them
// (ZeroMQ in real mode and emulation, the simulated network in simulation). A node addresses its
// peers by node id and its clients by an opaque ClientId handed to it with each request.
// Delivery is best effort: a message may be lost (peer down, link cut); the node's protocols
// retry what must arrive.
#pragma once

#include <string>

#include "net/proto/enoki.pb.h"

namespace enoki::net {

// Opaque handle of a client connection: a ZeroMQ routing id, or a simulated client's name.
using ClientId = std::string;

// Receives what a transport delivers. Called on the event-loop thread only.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  // A message from another node; msg.from() names it.
  virtual void OnPeerMessage(proto::PeerMessage&& msg) = 0;
  // A request from a client; answer it with Transport::ReplyToClient(client, ...).
  virtual void OnClientRequest(const ClientId& client, proto::Request&& request) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Where incoming messages go. Must be set before the loop runs; not owned.
  virtual void SetHandler(MessageHandler* handler) = 0;
  // Sends to node `to`. Never blocks; drops the message if it cannot be queued (peer unknown,
  // unreachable, or its queue full). Returns false when it knows the message was dropped.
  virtual bool SendToPeer(const std::string& to, const proto::PeerMessage& msg) = 0;
  // Answers a client. Never blocks; a reply to a client that left is dropped.
  virtual void ReplyToClient(const ClientId& client, const proto::Response& response) = 0;
};

}  // namespace enoki::net
