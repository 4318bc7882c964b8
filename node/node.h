// Node: one Enoki node's keygroup store and its replication. An event-driven state machine: it
// reacts to a client request, a peer message or a timer, changes its in-memory state, records the
// change in a write batch, and queues replies and peer messages. At the end of every round of
// events in which it had work it makes the batch durable (one storage commit for everything since
// the last one: group commit) and only then sends what was queued, so nothing is acknowledged or
// replicated before it is durable locally.
//
// It reaches time, timers, the network and storage only through the Env, Transport and
// StorageEngine it is given, so the same code runs in real mode, emulation and simulation.
// Not thread-safe: everything runs on the thread of the Env's loop.
//
// The Node routes requests and peer messages to its protocols, each a class of its own over a
// shared Core (node/core.h: keygroups, the batch and what waits for it, timers):
// - PeerTable (peers.h): liveness and round-trip times of the peers, nearest replicas;
// - Membership (membership.h): the members, joins and leaves, their gossip;
// - Replication (replication.h): the durable outbox, retries, synchronous writes;
// - Catalog (catalog.h): keygroup entries (owed to the peers through Replication); what an
//   applied change means for replication and joining goes to them as an event (KeygroupChange);
// - AntiEntropy (anti_entropy.h): replicas compare digests of their items and repair what differs;
// - Joining (joining.h): a replica added later pulls the data before it serves reads;
// - Forwarding (forwarding.h): a node without a ready replica runs the operation at the nearest;
// - ItemOps (items.h): item operations on a ready replica.
// docs/protocol.md has the messages, docs/architecture.md how the classes depend on each other.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/rate_limited_log.h"
#include "core/status.h"
#include "net/trace.h"
#include "net/transport.h"
#include "node/anti_entropy.h"
#include "node/catalog.h"
#include "node/core.h"
#include "node/forwarding.h"
#include "node/items.h"
#include "node/joining.h"
#include "node/membership.h"
#include "node/metrics.h"
#include "node/peer_checks.h"
#include "node/peers.h"
#include "node/replication.h"
#include "node/storage.h"

namespace enoki::node {

// Largest frame a node must accept for the given value limit (a value plus keys and headers).
size_t MaxMessageBytes(size_t max_value_bytes);

class Node : public net::MessageHandler {
 public:
  using Done = node::Done;

  Node(NodeOptions options, core::Env& env, net::Transport& transport, StorageEngine& storage);
  ~Node() override = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Loads the durable state, resumes unfinished replication and joins, and starts the timers.
  [[nodiscard]] core::Status Start();
  // Whether this node left the cluster (`enoki node leave`): it talks to no other node.
  bool HasLeft() const { return membership_.HasLeft(); }
  // Whether it knows any member but itself (that has not left).
  bool HasPeers() const { return !peers_.peers().empty(); }
  // This node's own member entry as it asks to join with: where it is reached and its key now.
  proto::Member OwnEntry() const {
    proto::Member m = *membership_.Find(core_.id());
    m.set_endpoint(core_.options().endpoint);
    m.set_public_key(core_.options().public_key);
    return m;
  }
  // Merges the member list of the member this node joined through (the answer to its
  // JoinRequest).
  void OnJoined(const proto::MemberList& list) {
    core_.RequestFlush();
    membership_.OnJoined(list);
  }

  // Runs `request` as if a client had sent it. `done` is called exactly once, on the loop thread,
  // after any write it made is durable here (and, for synchronous keygroups, at the replicas).
  void Execute(proto::Request request, Done done);

  // Runs `request` at node `target` (this node if it is its own id): sends it there and calls
  // `done` with the answer, or UNAVAILABLE when none came within `timeout`.
  void ExecuteAt(const std::string& target, proto::Request request, core::Duration timeout,
                 Done done);

  // Who serves function requests (deploy, delete, list, invoke), from clients, from functions and
  // from other nodes (`caller`: who asked; unnamed but for a client's); without one they are
  // refused.
  using FunctionHandler = std::function<void(proto::Request&&, const net::Caller&, Done)>;
  void SetFunctionHandler(FunctionHandler handler) { function_handler_ = std::move(handler); }
  // Makes a function deployment durable with the node's next commit (nullptr: its removal).
  void SaveFunction(const std::string& name, const proto::FunctionSpec* spec);
  // Calls `done(response)` once every write recorded before is durable.
  void CompleteAfterCommit(Done done, proto::Response response) {
    core_.Complete(done, std::move(response));
  }
  // The deployments Start() loaded, handed over once (to the function host).
  std::vector<proto::FunctionSpec> TakeSavedFunctions() { return std::move(saved_functions_); }

  // Starts the commit of the pending batch (unless one is under way), and delivers the
  // completions and sends the peer messages whose writes are durable (node/core.h); repeats while
  // that produced more work. The node calls it itself at the end of every round of events
  // in which it had work (Env::AtEndOfRound): no host has to. Public for tests that drive a node
  // outside any round, and for a host that stops one.
  void Flush();

  void OnPeerMessage(proto::PeerMessage&& msg) override;
  // A client's request, answered to `done` rather than through the transport (a front end of
  // its own: adapters/resp_server.h); counted in the metrics as OnClientRequest counts.
  void Serve(const net::Caller& caller, proto::Request&& request, Done done);
  void OnClientRequest(const net::ClientId& client, const net::Caller& caller,
                       proto::Request&& request) override;

  const std::string& id() const { return core_.id(); }
  // The environment the node runs in (for functions: time and timers).
  core::Env& env() { return core_.env(); }
  // Where the node reports writes and functions' store operations (nullptr: nowhere). The sink
  // must outlive the node.
  void SetTrace(net::TraceSink* trace) { core_.SetTrace(trace); }
  net::TraceSink* trace() { return core_.trace(); }
  // Entries waiting in the outbox for any peer.
  size_t OutboxSize() const;
  // Whether `keygroup` is in the catalog (created and not deleted).
  bool HasKeygroup(const std::string& keygroup) const;
  // Whether this node holds a replica of `keygroup` that has all of its data.
  bool IsReadyReplica(const std::string& keygroup) const;
  // Every keygroup of the catalog (not deleted), with whether this node holds it.
  void ListKeygroups(proto::KeygroupList& out) const;
  // Its peers (up or down, round-trip time, outbox) and the keygroups it holds.
  void StatusReport(proto::NodeStatus& out) const;
  // What the node counted about itself.
  const NodeMetrics& metrics() const { return core_.metrics(); }
  // Appends the node's metrics (docs/operations.md) to `w`.
  void WriteMetrics(MetricsWriter& w) const;
  // A request's kind as metrics name it: its field in proto::Request ("get", "put", ...).
  static std::string OpName(const proto::Request& request);

 private:
  // Whether `request` changes the catalog, the functions or the members (refused while writes
  // cannot be made durable: Core::StorageFault).
  static bool ChangesState(const proto::Request& request);
  // Runs a request from a client (`caller`), a function or (`forwarded`) another node (both
  // with an unnamed caller).
  void Dispatch(proto::Request&& request, const net::Caller& caller, bool forwarded, Done done);
  // A MeasureRttRequest (the test bed's): answered when the peer table has measured.
  void MeasureRtt(const proto::MeasureRttRequest& request, proto::Response&& response, Done done);
  // An item operation: here on a ready replica, else at the nearest one.
  void DispatchItemOp(proto::Request&& request, bool forwarded, proto::Response&& response,
                      Done done);
  // A LeaveRequest: at the leaving node, handed to another member; at another, done there.
  void DispatchLeave(proto::Request&& request, bool forwarded, proto::Response&& response,
                     Done done);
  // Runs a request another node forwarded, and sends the answer back.
  void OnForwardRequest(const std::string& from, proto::ForwardRequest& msg);

  // The core first: it is destroyed last, and its destructor cancels the timers whose callbacks
  // capture the protocols below (no callback runs while they are destroyed).
  Core core_;
  PeerTable peers_;
  Replication replication_;
  Membership membership_;
  Catalog catalog_;
  Joining joining_;
  Forwarding forwarding_;
  ItemOps items_;
  AntiEntropy anti_entropy_;
  FunctionHandler function_handler_;
  std::vector<proto::FunctionSpec> saved_functions_;
  // Peer messages dropped: from a node this one does not know, or failing the checks (their
  // warnings rate-limited, so that a flood does not flood the log).
  core::RateLimitedLog unknown_senders_;
  core::RateLimitedLog refused_messages_;
  // Each request kind's entry in metrics().requests, by its field number in proto::Request, found
  // at its first request (the map's entries stay put): not a name and a map look-up per request.
  std::array<RequestStats*, 64> stats_by_op_{};
};

}  // namespace enoki::node
