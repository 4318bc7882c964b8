// Nodes on the simulator, crash and restart.
#include "sim/cluster.h"

#include <cassert>

namespace enoki::sim {

SimCluster::SimCluster(std::vector<std::string> ids, uint64_t seed, core::Duration delay,
                       std::function<void(node::NodeOptions&)> tune)
    : sim_(seed), network_(sim_, delay) {
  for (const auto& id : ids) {
    Member& m = members_[id];
    m.options.id = id;
    for (const auto& other : ids) {
      if (other != id) m.options.peers.push_back(other);
    }
    if (tune) tune(m.options);
  }
  for (const auto& id : ids) {
    core::Status st = Restart(id);
    assert(st.ok());
    st.IgnoreError();
  }
}

SimCluster::~SimCluster() {
  for (auto& [id, m] : members_) {
    if (m.node) Crash(id);
  }
}

node::Node& SimCluster::node(const std::string& id) {
  Member& m = members_.at(id);
  assert(m.node != nullptr);
  return *m.node;
}

void SimCluster::SetTrace(const std::string& id, net::TraceSink* trace) {
  Member& m = members_.at(id);
  m.trace = trace;
  if (m.node) m.node->SetTrace(trace);
}

void SimCluster::Crash(const std::string& id) {
  Member& m = members_.at(id);
  network_.SetUp(id, false);
  network_.TransportOf(id).SetHandler(nullptr);
  sim_.RemoveIdleHook(m.hook);
  m.host.reset();
  m.node.reset();
}

core::Status SimCluster::Restart(const std::string& id) {
  Member& m = members_.at(id);
  assert(m.node == nullptr);
  net::Transport& transport = network_.TransportOf(id);
  m.node = std::make_unique<node::Node>(m.options, sim_, transport, m.storage);
  m.node->SetTrace(m.trace);
  ENOKI_RETURN_IF_ERROR(m.node->Start());
  m.host = std::make_unique<node::FunctionHost>(*m.node, sim_);
  transport.SetHandler(m.node.get());
  network_.SetUp(id, true);
  node::Node* raw = m.node.get();
  m.hook = sim_.AddIdleHook([raw] { raw->Flush(); });
  return core::Status::Ok();
}

std::optional<proto::Response> SimCluster::Call(const std::string& id, proto::Request request,
                                                core::Duration limit) {
  auto result = std::make_shared<std::optional<proto::Response>>();
  network_.Request("", id, std::move(request),
                   [result](proto::Response&& r) { *result = std::move(r); });
  sim_.RunUntilTrue([&] { return result->has_value(); }, limit);
  return std::move(*result);
}

}  // namespace enoki::sim
