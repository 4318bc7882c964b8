// A node on its own thread, on loopback.
#include "testbed/loopback_node.h"

#include "functions/builtins.h"

namespace enoki::testbed {

LoopbackNode::LoopbackNode(node::StorageEngine& storage)
    : storage_(storage),
      loop_(1),
      transport_(context_, loop_,
                 {"loopback", "tcp://127.0.0.1:*", {}, node::MaxMessageBytes(1 << 20), {}}) {
  options_.id = "loopback";
}

core::Result<std::unique_ptr<LoopbackNode>> LoopbackNode::Start(node::StorageEngine& storage) {
  auto n = std::unique_ptr<LoopbackNode>(new LoopbackNode(storage));
  ENOKI_RETURN_IF_ERROR(n->transport_.Start());
  n->node_.emplace(n->options_, n->env_, n->transport_, n->storage_);
  n->transport_.SetHandler(&*n->node_);
  ENOKI_RETURN_IF_ERROR(n->node_->Start());
  n->host_.emplace(*n->node_, n->env_, functions::Builtins());
  n->thread_ = std::thread([raw = n.get()] { raw->loop_.Run(); });
  n->client_.emplace(n->context_, n->transport_.bound_endpoint(), std::chrono::seconds(10));
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
}

}  // namespace enoki::testbed
