// What a run in real time against node processes shares, whoever started the nodes (the
// emulation starts them on this host, the cluster mode finds them running): NodeCalls, the
// requests of the driver and of the client nodes' callers, sent from this process over ZeroMQ
// (the Call of their Driver::Mode), and DriveOnLoop, the event loop that runs the Driver until it
// finishes or is stopped.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include <zmq.hpp>

#include "adapters/curve.h"
#include "adapters/event_loop.h"
#include "net/link_model.h"
#include "testbed/driver.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

// The requests of a run to its nodes: the driver's own (set-up, link changes, replica check) over
// a control socket per node; a client's callers' over one socket per client and node, over the
// client's links, which this process shapes with the link model or leaves to what lies between
// (ClientLinks); how late a shaped answer reaches its caller after its arrival time counts in the
// loop's delivery lateness. All on the loop's thread.
class NodeCalls {
 public:
  using Pair = Driver::Pair;

  // What this process does with a client's links to the nodes.
  enum class ClientLinks {
    // Left to what lies between (netem).
    kUnshaped,
    // Shaped here, and the nodes share this host's monotonic clock (the user-space shaper): a
    // request leaves kDeliveryLead ahead of its arrival, stamped with it, and a response's way
    // starts when the node sent it.
    kSameHost,
    // Shaped here on top of a real network (the cluster mode; the links given are what the
    // shaping adds to it): a request leaves at its arrival time, unstamped, and a response's way
    // starts when it came.
    kOverNetwork,
  };

  // `driver` gives the links as they are now and records errors; it outlives this.
  NodeCalls(const Scenario& s, adapters::EventLoop& loop, Driver& driver, ClientLinks links);
  NodeCalls(const NodeCalls&) = delete;
  NodeCalls& operator=(const NodeCalls&) = delete;

  // Connects the driver's control socket to node `id` at `endpoint` (CURVE with `keys` when they
  // are enabled). Every node is connected before the run starts.
  void ConnectNode(const std::string& id, const std::string& endpoint,
                   const adapters::ClientKeys& keys);
  // Connects the callers' sockets of every workload's (client, node), to `endpoint(client, node)`
  // with the keys of its node's control socket: up when the workloads start, after the set-up.
  // An empty endpoint: that client's callers do not run here (a cluster run's client host).
  void ConnectCallers(const std::function<std::string(const std::string& client,
                                                      const std::string& node)>& endpoint);

  // Driver::Mode::AwaitCallers: calls `ready` on the loop once every caller's socket has a
  // connection whose handshake is done (ZMQ_IMMEDIATE: until then a send is refused, and the
  // request would fail UNAVAILABLE), asking every 20 ms; UNAVAILABLE, naming the client and the
  // node, when one has none after 30 s (over a lossy link a lost SYN costs 1 s, two 3 s).
  static constexpr core::Duration kCallersConnectLimit = std::chrono::seconds(30);
  void AwaitCallers(std::function<void(core::Status)> ready) {
    AwaitCallers(loop_.Now() + kCallersConnectLimit, std::move(ready));
  }

  // Driver::Mode::Call.
  void Call(const std::string& from, const std::string& node, proto::Request request,
            Driver::Mode::OnReply on_reply);
  // A client's link a -> b is now `spec` (when this process shapes it; others are the caller's).
  void SetLink(const Pair& p, const net::LinkSpec& spec);
  // Asks node a to shape its link to b as `spec` (its user-space shaper; over the network with
  // ClientLinks::kOverNetwork), without waiting: the answer comes on the loop, and an error is
  // recorded as an `error` event. A node that is down is not asked.
  void AskLink(const Pair& p, const net::LinkSpec& spec);

  // Node `node` is down (crashed, or died): it will not answer the calls it received, and the
  // driver's calls to it are refused at once until MarkUp.
  void MarkDown(const std::string& node);
  void MarkUp(const std::string& node) { down_.erase(node); }
  bool down(const std::string& node) const { return down_.contains(node); }

 private:
  // AwaitCallers, asking again until `deadline`.
  void AwaitCallers(core::TimePoint deadline, std::function<void(core::Status)> ready);
  // A request on its way: the node it is for, whether it left this process, and who waits for
  // its answer.
  struct PendingCall {
    std::string node;
    bool sent = false;
    Driver::Mode::OnReply on_reply;
  };
  struct NodeSocket {
    std::string endpoint;
    adapters::ClientKeys keys;
    std::unique_ptr<zmq::socket_t> control;
  };

  bool shaped() const { return links_ != ClientLinks::kUnshaped; }
  // A message in flight in this process on a link that was cut meanwhile is lost.
  bool CutInProcess(const Pair& p) const { return shaped() && driver_.Partitioned(p); }
  // Takes the call `response` answers from those pending: nothing when none waits for it, or
  // when another node than the one addressed answered (the call then ends with INTERNAL).
  Driver::Mode::OnReply TakeCall(const proto::Response& response);
  // The answers to the callers of one client from one node, each over the client's link back.
  void OnReplies(const Pair& path);
  // The answers to the driver's own requests to `node`.
  void OnControlReplies(const std::string& node);

  const Scenario& s_;
  adapters::EventLoop& loop_;
  Driver& driver_;
  const ClientLinks links_;
  zmq::context_t context_{1};
  std::map<std::string, NodeSocket> nodes_;
  std::set<std::string> down_;
  // The callers' sockets, by (client, node).
  std::map<Pair, std::unique_ptr<zmq::socket_t>> callers_;
  // A client's links to and from the nodes its workloads call: all its callers share each one,
  // its rate and its order, as they share one host's link. Unshaped ({}) with kUnshaped.
  std::map<Pair, net::LinkModel> client_links_;
  std::unordered_map<uint64_t, PendingCall> calls_;  // by the id they were sent with
  uint64_t next_call_ = 1;
};

// Runs `driver` (its Run called already) on `loop` until it finishes or `stop_requested` (asked
// every 50 ms) returns true; while the workloads run, calls `while_running` every 50 ms and, with
// `progress`, rewrites a progress line on stderr every second. Returns whether a stop ended the
// run before its replica check started.
bool DriveOnLoop(adapters::EventLoop& loop, Driver& driver,
                 const std::function<bool()>& stop_requested, bool progress,
                 const std::function<void()>& while_running);

}  // namespace enoki::testbed
