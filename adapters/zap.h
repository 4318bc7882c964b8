// ZapHandler: who may open a CURVE connection to this process's nodes. ZeroMQ asks it (the ZAP
// protocol, RFC 27, over inproc://zeromq.zap.01 in the node's context) about every CURVE
// handshake; it admits only the public keys it was given, each with the identity that the
// connection's messages then carry as their User-Id ("node:ID" for a peer, "client:NAME" for a
// client), and refuses any other key. Refusals are logged, rate-limited: the first, then at most
// one line every 10 s with the count, so that a scan does not flood the log.
//
// One per ZeroMQ context (the address is fixed by ZeroMQ); it runs on the node's event loop.
#pragma once

#include <map>
#include <string>

#include <zmq.hpp>

#include "adapters/event_loop.h"
#include "core/status.h"

namespace enoki::adapters {

// Logs the first of a kind of event, then at most one line per interval with how many there were.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(core::Duration interval = std::chrono::seconds(10))
      : interval_(interval) {}
  // Logs `line` (a warning) unless one was logged less than the interval ago.
  void Warn(core::TimePoint now, const std::string& line);
  uint64_t count() const { return count_; }

 private:
  core::Duration interval_;
  core::TimePoint last_{};
  uint64_t count_ = 0;
  uint64_t unlogged_ = 0;
};

class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, EventLoop& loop);
  // Binds the ZAP address and serves it on the loop. Fails if another handler holds it.
  [[nodiscard]] core::Status Start();
  // The admitted keys: public key (Z85) -> identity. Replaces the previous set.
  void SetKeys(std::map<std::string, std::string> keys) { keys_ = std::move(keys); }
  // Handshakes refused so far.
  uint64_t refused() const { return refusals_.count(); }

 private:
  void OnReadable();

  EventLoop& loop_;
  zmq::socket_t socket_;
  std::map<std::string, std::string> keys_;
  RateLimitedLog refusals_;
};

}  // namespace enoki::adapters
