// LoopbackNode: a real node as an emulation runs one (adapters::RealNode on loopback TCP, with
// the built-in functions, on an event loop on a thread of its own), and a client to it in the
// calling thread.
// What the calibration and the benchmarks measure. The storage is the caller's (SQLite, or a
// wrapper around it that times its commits); it must outlive the node. It also meters the time
// the node's timers made it wait (a function's sleeps), so that a measurement can leave it out.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "adapters/real_node.h"
#include "core/status.h"
#include "node/storage.h"

namespace enoki::testbed {

class LoopbackNode {
 public:
  static core::Result<std::unique_ptr<LoopbackNode>> Start(node::StorageEngine& storage);
  // Stops the loop and joins its thread.
  ~LoopbackNode();

  const std::string& id() const { return node_->ready().id; }
  const std::string& endpoint() const { return node_->ready().endpoint; }
  // A client (the caller's thread only), answers awaited up to 10 s.
  adapters::Client& client() { return *client_; }
  zmq::context_t& context() { return context_; }

  // Starts a new window of the timer meter, now.
  void StartWindow();
  // The delays of the timers that were set in the current window and have run: the sleeps of
  // the functions it ran (the node's own timers are set for later than a call lasts). From any
  // thread.
  core::Duration Waited() const { return core::Duration(waited_ns_.load()); }

 private:
  // The loop's Env with the meter: every timer set through it counts its delay when it runs, if
  // it was set in the current window.
  class MeteredEnv : public core::Env {
   public:
    explicit MeteredEnv(LoopbackNode& n) : n_(n) {}
    core::TimePoint Now() const override { return n_.loop_.Now(); }
    int64_t WallMicros() const override { return n_.loop_.WallMicros(); }
    core::TimerId Schedule(core::Duration delay, std::function<void()> fn) override;
    void Cancel(core::TimerId id) override { n_.loop_.Cancel(id); }
    std::mt19937_64& Rng() override { return n_.loop_.Rng(); }
    void AtEndOfRound(std::function<void()> fn) override { n_.loop_.AtEndOfRound(std::move(fn)); }
    void Log(core::LogLevel level, const std::string& line) override { n_.loop_.Log(level, line); }

   private:
    LoopbackNode& n_;
  };

  LoopbackNode() : loop_(1) {}

  zmq::context_t context_{1};
  adapters::EventLoop loop_;
  MeteredEnv env_{*this};
  std::atomic<int64_t> window_start_ns_{0}, waited_ns_{0};
  std::unique_ptr<adapters::RealNode> node_;
  std::thread thread_;
  std::optional<adapters::Client> client_;
};

}  // namespace enoki::testbed
