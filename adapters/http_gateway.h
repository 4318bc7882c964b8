// HttpGateway: the node's tinyFaaS-compatible HTTP front. `POST /<function>` (or GET) with the
// request body calls the function at the node and answers with its response body; the header
// `X-tinyFaaS-Async: true` makes the call asynchronous (202 Accepted at once). Errors map to HTTP
// status codes with the message as body: 404 no such function, 400 bad request, 413 too large,
// 503 unavailable (e.g. concurrency limit), 504 timeout, 500 the function failed.
//
// It runs its own threads (cpp-httplib's server) and reaches the node like any client, over the
// node's ZeroMQ endpoint with one client socket per worker thread, so the node's loop thread
// stays the only one that touches the node.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "core/status.h"

namespace httplib {
class Server;
}

namespace enoki::adapters {

class HttpGateway {
 public:
  // Concurrent HTTP connections served at once (one thread and one node client each).
  static constexpr size_t kWorkers = 128;

  // `node_endpoint`: the node's ZeroMQ endpoint; `address`: HOST:PORT to listen on;
  // `max_body_bytes`: the largest request body, after any decompression (413 beyond it).
  HttpGateway(zmq::context_t& context, std::string node_endpoint, std::string address,
              size_t max_body_bytes);
  // Stops the server and joins its threads.
  ~HttpGateway();

  // Binds the address (an error if it is taken or malformed) and starts serving.
  [[nodiscard]] core::Status Start();
  // The port actually bound (resolves port 0).
  int port() const { return port_; }

 private:
  zmq::context_t& context_;
  std::string node_endpoint_;
  std::string address_;
  size_t max_body_bytes_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace enoki::adapters
