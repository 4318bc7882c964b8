// LoopbackNode: a real node as an emulation runs one (its storage, ZeroMQ on loopback TCP, a
// function host, an event loop on a thread of its own), and a client to it in the calling thread.
// What the calibration and the benchmarks measure. The storage is the caller's (SQLite, or a
// wrapper around it that times its commits); it must outlive the node.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "core/status.h"
#include "net/client.h"
#include "net/event_loop.h"
#include "net/zmq_transport.h"
#include "node/function_host.h"
#include "node/node.h"

namespace enoki::testbed {

class LoopbackNode {
 public:
  static core::Result<std::unique_ptr<LoopbackNode>> Start(node::StorageEngine& storage);
  // Stops the loop and joins its thread.
  ~LoopbackNode();

  const std::string& id() const { return options_.id; }
  const std::string& endpoint() const { return transport_.bound_endpoint(); }
  // A client (the caller's thread only), answers awaited up to 10 s.
  net::Client& client() { return *client_; }
  zmq::context_t& context() { return context_; }

 private:
  explicit LoopbackNode(node::StorageEngine& storage);

  node::StorageEngine& storage_;
  zmq::context_t context_{1};
  net::EventLoop loop_;
  net::ZmqTransport transport_;
  node::NodeOptions options_;
  std::optional<node::Node> node_;
  std::optional<node::FunctionHost> host_;
  std::thread thread_;
  std::optional<net::Client> client_;
};

}  // namespace enoki::testbed
