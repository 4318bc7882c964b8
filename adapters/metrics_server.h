// MetricsServer: a small HTTP server on an address of its own (`enoki node --metrics HOST:PORT`,
// off by default) for operators: `GET /health` answers 200 "ok NODE" while the node's event loop
// answers (503 when it has not for a second), and `GET /metrics` the node's metrics in the
// Prometheus text exposition format 0.0.4 (docs/operations.md lists them). Plain HTTP, without
// authentication: `enoki node` binds it beyond loopback only with --insecure (docs/security.md).
//
// Threads: cpp-httplib serves on threads of its own, which never touch the node. A request asks
// the loop for a fresh rendering (an eventfd the loop watches) and waits for it; the loop renders
// on its own thread and hands the text over under a mutex. So the numbers are those of the
// moment the request came, not of an earlier snapshot.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "adapters/event_loop.h"
#include "core/status.h"

namespace enoki::adapters {

class MetricsServer {
 public:
  // `render`: the metrics text, called on the loop's thread.
  MetricsServer(EventLoop& loop, std::string node_id, std::function<std::string()> render);
  // Stops the server and joins its threads. On the loop's thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `address` (HOST:PORT; port 0: any free port) and starts serving; an error if the
  // address is malformed or taken.
  [[nodiscard]] core::Status Start(const std::string& address);
  // The port bound (resolves port 0).
  int port() const { return port_; }

 private:
  class Server;  // cpp-httplib's (metrics_server.cc)

  // On a server thread: a fresh rendering from the loop (with `render`; else an empty text, as a
  // sign of life), or nullopt when the loop did not answer within a second (or the server stops).
  std::optional<std::string> Snapshot(bool render);
  // On the loop's thread: the eventfd was written.
  void OnAsked();

  EventLoop& loop_;
  std::string node_id_;
  std::function<std::string()> render_;
  int event_fd_ = -1;
  EventLoop::WatchId watch_ = 0;
  int port_ = 0;
  std::unique_ptr<Server> server_;
  std::thread thread_;

  std::mutex mu_;  // guards what follows
  std::condition_variable answered_;
  uint64_t asked_ = 0;          // requests for a rendering so far
  uint64_t answered_n_ = 0;     // the latest request the loop answered
  bool render_wanted_ = false;  // a request since the loop's last answer wants the text
  std::string text_;
  bool stopping_ = false;
};

}  // namespace enoki::adapters
