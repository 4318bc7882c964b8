// A node on its own thread, on loopback.
#include "testbed/loopback_node.h"

namespace enoki::testbed {

core::Result<std::unique_ptr<LoopbackNode>> LoopbackNode::Start(node::StorageEngine& storage) {
  auto n = std::unique_ptr<LoopbackNode>(new LoopbackNode());
  adapters::RealNodeConfig config;
  config.node.id = "loopback";
  auto started = adapters::RealNode::Start(n->context_, n->loop_, n->env_, storage, config);
  if (!started.ok()) return started.status();
  n->node_ = std::move(started.value());
  n->thread_ = std::thread([raw = n.get()] { raw->loop_.Run(); });
  n->client_.emplace(n->context_, n->endpoint(), std::chrono::seconds(10), n->id());
  return n;
}

core::TimerId LoopbackNode::MeteredEnv::Schedule(core::Duration delay, std::function<void()> fn) {
  int64_t set_at = Now().time_since_epoch().count();
  return n_.loop_.Schedule(delay, [this, set_at, delay, fn = std::move(fn)] {
    if (set_at >= n_.window_start_ns_.load()) n_.waited_ns_ += delay.count();
    fn();
  });
}

void LoopbackNode::StartWindow() {
  window_start_ns_ = loop_.Now().time_since_epoch().count();
  waited_ns_ = 0;
}

LoopbackNode::~LoopbackNode() {
  loop_.Stop();
  if (thread_.joinable()) thread_.join();
  client_.reset();
  node_.reset();
}

}  // namespace enoki::testbed
