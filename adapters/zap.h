// ZapHandler: who may connect to this process's node. ZeroMQ asks it (the ZAP protocol, RFC 27,
// over inproc://zeromq.zap.01 in the node's context) about every handshake on an endpoint bound
// with a ZAP domain, and the identity it answers becomes the User-Id of every message on that
// connection (it wins over anything the client says of itself):
// - domain kCurveDomain (the listen endpoint): a CURVE key it was given, as "node:ID" for a peer
//   or "client:NAME" for a client; any other key, or another mechanism, is refused;
// - domain kLocalDomain (the local endpoint, a Unix socket only the node's user may reach):
//   "local", whoever connects (the file system's permissions are the authentication);
// - domain kPlainDomain (the listen endpoint of a node without keys, mechanism NULL): anyone.
// With a cap on connections (WatchConnections), a client (not a peer, nor the local endpoint)
// that comes while the socket has that many connections open is refused, so that connections
// stay below the process's file descriptor limit.
// Refusals are logged, rate-limited: the first, then at most one line every 10 s with the count,
// so that a scan does not flood the log.
//
// One per ZeroMQ context (the address is fixed by ZeroMQ); it runs on the node's event loop.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "adapters/event_loop.h"
#include "core/rate_limited_log.h"
#include "core/status.h"

namespace enoki::adapters {

// Logs `line` as a warning, as `log` lets it through (the first, then one per interval with the
// count).
void WarnLimited(core::RateLimitedLog& log, core::TimePoint now, const std::string& line);

class ZapHandler {
 public:
  static constexpr const char* kCurveDomain = "enoki";
  static constexpr const char* kLocalDomain = "enoki-local";
  static constexpr const char* kLocalIdentity = "local";
  static constexpr const char* kPlainDomain = "enoki-plain";

  ZapHandler(zmq::context_t& context, EventLoop& loop);
  // Binds the ZAP address and serves it on the loop. Fails if another handler holds it.
  [[nodiscard]] core::Status Start();
  // The admitted keys: public key (Z85) -> identity. Replaces the previous set.
  void SetKeys(std::map<std::string, std::string> keys) { keys_ = std::move(keys); }
  // Counts the connections of `socket` (a ZeroMQ socket monitor) and refuses clients while
  // `max_clients` or more are open; calls `on_closed` (if any), on the loop, whenever one of them
  // closes. Before `socket` binds anything.
  [[nodiscard]] core::Status WatchConnections(zmq::socket_t& socket, size_t max_clients,
                                              std::function<void()> on_closed = {});
  // Connections of the watched socket open now (accepted, not yet gone).
  size_t connections() const { return connections_; }

 private:
  void OnReadable();
  void OnMonitorEvent();
  // Whether a client from `address` comes over the cap (logged, rate-limited).
  bool OverCap(const std::string& address);

  zmq::context_t& context_;
  EventLoop& loop_;
  zmq::socket_t socket_;
  std::map<std::string, std::string> keys_;
  core::RateLimitedLog refusals_;
  core::RateLimitedLog over_cap_;
  std::optional<zmq::socket_t> monitor_;
  size_t max_clients_ = 0;  // 0: no cap
  size_t connections_ = 0;
  std::function<void()> on_closed_;
};

}  // namespace enoki::adapters
