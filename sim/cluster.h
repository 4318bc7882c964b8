// SimCluster: many Enoki nodes in one process on the simulator and the simulated network, each
// with in-memory storage that outlives the node object, so a node can crash (its object is
// destroyed: everything not yet committed is lost, as in a SIGKILL) and restart on its data.
// After every event, only the nodes that event reached (a message delivered to them, a timer of
// theirs) are flushed, so an event costs the same in a cluster of 3 nodes and of 10,000.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/random.h"
#include "core/status.h"
#include "node/function_host.h"
#include "node/memory_storage.h"
#include "node/node.h"
#include "sim/cost_model.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace enoki::sim {

// Peers for nodes `ids` that are all peers of each other.
std::map<std::string, std::set<std::string>> AllPeers(const std::vector<std::string>& ids);

class SimCluster {
 public:
  // The nodes of `peers` (each with its peers), with `delay` one way on every link. `tune` may
  // adjust each node's options (timeouts, limits) before it starts.
  SimCluster(const std::map<std::string, std::set<std::string>>& peers, uint64_t seed,
             core::Duration delay, std::function<void(node::NodeOptions&)> tune = nullptr);
  ~SimCluster();

  Simulator& sim() { return sim_; }
  SimNetwork& network() { return network_; }
  // The running node `id` (asserts that it is up).
  node::Node& node(const std::string& id);
  bool up(const std::string& id) const;

  // What keeps a node's CPU busy, in virtual time (nothing, by default): each invocation of a
  // function (its cost drawn per call by what `invocation(node)` gives for the node, asked once
  // per node when the costs are set; nullptr, or an empty function for a node: none), and each
  // message it sends or receives (`message`: the encryption or the decryption of a secure link).
  // A node sends what it sends once its CPU is free: costs delay its answers and its messages, and
  // queue up when they overlap, as on the one thread of a real node. What the node does with a
  // message or a timer happens at once; only its sending waits. `commit`: what each commit of its
  // storage takes on a commit thread of its own, as a real node's (adapters/commit_thread.h): it
  // begins when the CPU is free, keeps the CPU free meanwhile, and what waits for it waits; the
  // writes that come meanwhile go together into the next commit.
  // `wakeup`: what a node that was idle pays before the message that wakes it: a message that
  // reaches a node whose CPU has been free, and which has sent and received nothing, for at least
  // kIdleAfter keeps its CPU busy for a wake-up drawn from `wakeup` first (a real node's process
  // asleep in its poll, its CPU in an idle state, its caches cold; testbed/calibration.h measures
  // it). Its draws come from a stream of their own, so that charging them moves no other draw.
  struct Costs {
    using Invocation = std::function<core::Duration(const proto::FunctionSpec& spec)>;
    std::function<Invocation(const std::string& node)> invocation;
    CostModel commit;
    CostModel message;
    CostModel wakeup;
  };
  // How long a node must have done nothing for a message to wake it: the shaper's lead
  // (net::kDeliveryLead), for which an emulated node holds every message it receives, asleep
  // unless it has other work: a node idle that long is asleep when the message is due.
  static constexpr core::Duration kIdleAfter = net::kDeliveryLead;
  void SetCosts(Costs costs);
  // The costs' random stream, for what `invocation` draws.
  core::StreamRng& cost_rng() { return cost_rng_; }
  // The wake-ups charged so far, over all nodes.
  uint64_t wakeups() const { return wakeups_; }

  // Where node `id` reports its trace (net/trace.h), also after restarts; nullptr: nowhere.
  void SetTrace(const std::string& id, net::TraceSink* trace);

  // Destroys the node object (uncommitted state is lost); its storage stays.
  void Crash(const std::string& id);
  // Starts a new node object on the kept storage.
  [[nodiscard]] core::Status Restart(const std::string& id);
  // Every commit of node `id`'s storage fails with `fault` from now on (ok: none does), as on a
  // full or failing disk.
  void FailCommits(const std::string& id, core::Status fault);
  // Node `id`'s storage holds every commit it is handed until released (false), as a frozen file
  // system does; the node goes on meanwhile (node/core.h).
  void StallCommits(const std::string& id, bool stalled);
  // What node `id` keeps durable, to change while it is down (a disk that lost writes).
  node::MemoryStorage& Storage(const std::string& id);
  // Node `id`, down, loses all it kept (a deleted database).
  void LoseStorage(const std::string& id);
  // Node `id`'s commits keep nothing from now on: they take their time and succeed as before,
  // but what they wrote is not copied into its storage, which only a restart would read (or a
  // failed commit, to go back to it). For a node that will not restart: a run of 10,000 such
  // nodes keeps no second copy of every write. It can no longer restart (Restart refuses it),
  // nor fail or lose its commits (FailCommits, Storage and LoseStorage assert).
  void KeepNothing(const std::string& id);

  // Sends `request` (a store or a function request) to node `id` as a client and runs the
  // simulation until the answer arrives or `limit` of virtual time passed (then nullopt).
  std::optional<proto::Response> Call(const std::string& id, proto::Request request,
                                      core::Duration limit = std::chrono::seconds(30));

 private:
  struct Member;
  class MemberStorage;

  // Keeps `m`'s CPU busy for `cost` more, from now or from when it is free.
  void Charge(Member& m, core::Duration cost);
  // A message sent (`received` false) or received by `m`: its wake-up, if it was idle, and the
  // message's cost.
  void OnMessage(Member& m, bool received);

  Simulator sim_;
  SimNetwork network_;
  std::unordered_map<std::string, Member> members_;  // its elements never move
  Costs costs_;
  core::StreamRng cost_rng_;    // the costs' own stream (core/random.h)
  core::StreamRng wakeup_rng_;  // the wake-ups' own
  uint64_t wakeups_ = 0;
};

}  // namespace enoki::sim
