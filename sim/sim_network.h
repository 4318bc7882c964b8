// SimNetwork: the simulated network. Every node gets a Transport that hands messages to the
// simulator, to arrive when the link from sender to receiver says: each direction of a link is a
// net::LinkModel, the model the emulation's shaper uses (delay, jitter, loss, rate, cut; in
// order), drawing from the simulator's seeded generator, so a run is the same every time.
// Messages dropped by the model, over a link cut while they travel, or to a node that is down
// when they arrive, are lost. Clients are simulated too: Request() sends a request to a node from
// a client host, over that host's links to and from the node (the same kind of links).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "net/link_model.h"
#include "net/transport.h"
#include "sim/simulator.h"

namespace enoki::sim {

class SimNetwork {
 public:
  SimNetwork(Simulator& sim, core::Duration default_delay);
  ~SimNetwork();

  // The transport of node `id` (created on first call, kept for the network's life). Messages to
  // the node reach `handler` while it is attached.
  net::Transport& TransportOf(const std::string& id);
  // Marks the node up (its transport's handler receives messages) or down (they are lost).
  void SetUp(const std::string& id, bool up);
  // Where node `id` keeps the time its CPU is busy until: what it sends leaves then, not before
  // (nullptr: never busy). The pointer must outlive the network.
  void SetBusyUntil(const std::string& id, const core::TimePoint* busy_until);
  // Called for each message node `id` sends (before it leaves; `received` false) and each it
  // receives (before its handler sees it; `received` true), so that the owner of the nodes' CPUs
  // can charge the work; nullptr: nothing.
  void SetMessageCost(const std::string& id, std::function<void(bool received)> charge);

  // The link from `from` to `to`, one direction, from now on (messages on their way keep their
  // arrival). A link never set has the default delay and nothing else.
  void SetLink(const std::string& from, const std::string& to, const net::LinkSpec& spec);
  const net::LinkSpec& Link(const std::string& from, const std::string& to);
  // Both directions between a and b: their delay; cut or healed (the rest of each link stays).
  void SetDelay(const std::string& a, const std::string& b, core::Duration delay);
  void SetCut(const std::string& a, const std::string& b, bool cut);

  // Sends `request` to `node` from a client on host `from` (its links to and from the node are
  // those of SetLink; "" is a host with default links); `on_reply` runs when the response arrives
  // (never, if it is lost). Every request is a client of its own to the node.
  void Request(const std::string& from, const std::string& node, proto::Request request,
               std::function<void(proto::Response&&)> on_reply);

  // Messages lost so far (cut link, node down).
  uint64_t lost() const { return lost_; }

 private:
  class SimTransport;
  // One direction of a link, and what a message needs besides the model, found once and kept
  // so that a message costs one lookup among its sender's links: the node it leads to (nullptr:
  // not yet looked up, or a client's host) and, for a link from a client's host, the link back.
  struct Route {
    net::LinkModel model;
    SimTransport* to = nullptr;
    net::LinkModel* back = nullptr;
  };
  using Routes = std::unordered_map<std::string, Route>;  // by destination
  Route& RouteOf(const std::string& from, const std::string& to);
  // The link to `to` among `out`, the links from one node or host (made on first use).
  Route& RouteIn(const std::string& from, Routes& out, const std::string& to);
  void DeliverPeer(const SimTransport& from, Route& route, proto::PeerMessage msg);
  void DeliverReply(const SimTransport& from, const net::ClientId& client,
                    proto::Response response);

  Simulator& sim_;
  core::Duration default_delay_;
  // Hash maps; their elements never move.
  std::unordered_map<std::string, std::unique_ptr<SimTransport>> transports_;
  std::unordered_map<std::string, Routes> links_;  // by from
  struct PendingClient {
    net::LinkModel* back;  // the link from the node to the client's host
    std::function<void(proto::Response&&)> on_reply;
  };
  // By the number in the client's id ("client-N").
  std::unordered_map<uint64_t, PendingClient> clients_;
  uint64_t next_client_ = 1;
  uint64_t lost_ = 0;
};

}  // namespace enoki::sim
