// The Transport interface: how a node sends and receives messages, whatever carries them
// (ZeroMQ in real mode and emulation, the simulated network in simulation). A node addresses its
// peers by node id and its clients by an opaque ClientId handed to it with each request.
// Delivery is best effort: a message may be lost (peer down, link cut); the node's protocols
// retry what must arrive.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "net/proto/enoki.pb.h"

namespace enoki::net {

// How long a transport still delivers what was sent to a member that left (the answer to the
// request that made it leave, the member list that tells it), before it forgets the member.
constexpr std::chrono::seconds kLeftGrace{2};

// Opaque handle of a client connection: a ZeroMQ routing id, or a simulated client's name.
using ClientId = std::string;

// What one client may hold on a node (docs/security.md, "Quotas"): keygroups it created (counted
// over the catalog, which every node shares), functions it deployed here, the process workers
// those functions may run (the sum of their concurrency), and the concurrency of any one of its
// functions. The defaults are the node's `--quota-*` options; an access-file line may change them.
struct Quota {
  uint32_t keygroups = 100;
  uint32_t functions = 20;
  uint32_t workers = 32;
  uint32_t concurrency = 100;
};

// Who sent a client request, as the transport authenticated it. A caller without a name (any
// client of a node without keys, the node's own processes, a function, a simulated client) is
// held to no quota.
struct Caller {
  std::string name;        // the client's name in the node's access file
  std::string public_key;  // the key it connected with (Z85)
  Quota quota;
};

// Receives what a transport delivers. Called on the event-loop thread only.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  // A message from another node; msg.from() names it.
  virtual void OnPeerMessage(proto::PeerMessage&& msg) = 0;
  // A request from a client (`caller`: who it is); answer it with
  // Transport::ReplyToClient(client, ...).
  virtual void OnClientRequest(const ClientId& client, const Caller& caller,
                               proto::Request&& request) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Where incoming messages go. Must be set before the loop runs; not owned.
  virtual void SetHandler(MessageHandler* handler) = 0;
  // Sends to node `to`. Never blocks; drops the message if it cannot be queued (peer unknown,
  // unreachable, or its queue full). Returns false when it knows the message was dropped. The
  // message is the transport's (a simulated one hands it on as it is, without a copy).
  virtual bool SendToPeer(const std::string& to, proto::PeerMessage msg) = 0;
  // Answers a client. Never blocks; a reply to a client that left is dropped.
  virtual void ReplyToClient(const ClientId& client, proto::Response response) = 0;
  // From now on, node `member.id()` is reached as the entry says: at its endpoint with its key,
  // or (no endpoint) over the connection it opened to this node; a member that left is
  // forgotten once what was sent to it before has gone out (kLeftGrace). This node's own entry
  // changes nothing.
  virtual void SetPeer(const proto::Member& member) = 0;
};

}  // namespace enoki::net
