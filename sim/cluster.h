// SimCluster: many Enoki nodes in one process on the simulator and the simulated network, each
// with in-memory storage that outlives the node object, so a node can crash (its object is
// destroyed: everything not yet committed is lost, as in a SIGKILL) and restart on its data.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "node/function_host.h"
#include "node/memory_storage.h"
#include "node/node.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace enoki::sim {

class SimCluster {
 public:
  // Nodes `ids`, all peers of each other, with `delay` one way on every link. `tune` may adjust
  // each node's options (timeouts, limits) before it starts.
  SimCluster(std::vector<std::string> ids, uint64_t seed, core::Duration delay,
             std::function<void(node::NodeOptions&)> tune = nullptr);
  ~SimCluster();

  Simulator& sim() { return sim_; }
  SimNetwork& network() { return network_; }
  // The running node `id` (asserts that it is up).
  node::Node& node(const std::string& id);
  bool up(const std::string& id) const { return members_.at(id).node != nullptr; }

  // Where node `id` reports its trace (net/trace.h), also after restarts; nullptr: nowhere.
  void SetTrace(const std::string& id, net::TraceSink* trace);

  // Destroys the node object (uncommitted state is lost); its storage stays.
  void Crash(const std::string& id);
  // Starts a new node object on the kept storage.
  [[nodiscard]] core::Status Restart(const std::string& id);

  // Sends `request` (a store or a function request) to node `id` as a client and runs the
  // simulation until the answer arrives or `limit` of virtual time passed (then nullopt).
  std::optional<proto::Response> Call(const std::string& id, proto::Request request,
                                      core::Duration limit = std::chrono::seconds(30));

 private:
  struct Member {
    node::NodeOptions options;
    node::MemoryStorage storage;
    std::unique_ptr<node::Node> node;
    std::unique_ptr<node::FunctionHost> host;
    net::TraceSink* trace = nullptr;
    uint64_t hook = 0;
  };

  Simulator sim_;
  SimNetwork network_;
  std::map<std::string, Member> members_;
};

}  // namespace enoki::sim
