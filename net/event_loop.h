// EventLoop: the real-time environment. One thread polls ZeroMQ sockets and runs a timer heap on
// the steady clock; after every round of work it runs the idle hooks (where a node commits its
// batch of writes and sends what it queued). Everything registered with the loop runs on the
// thread that called Run().
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include <zmq.hpp>

#include "core/env.h"
#include "core/timer_queue.h"

namespace enoki::net {

class EventLoop : public core::Env {
 public:
  explicit EventLoop(uint64_t seed);

  core::TimePoint Now() const override;
  int64_t WallMicros() const override;
  core::TimerId Schedule(core::Duration delay, std::function<void()> fn) override;
  void Cancel(core::TimerId id) override;
  std::mt19937_64& Rng() override { return rng_; }

  // Calls `on_readable` whenever `socket` has a message to read. The socket must outlive the loop.
  void AddSocket(zmq::socket_t& socket, std::function<void()> on_readable);
  // Runs `hook` after each round of socket reads and timers.
  void AddIdleHook(std::function<void()> hook);
  // Runs until Stop() is called (from any thread or a signal handler) or a hook fails.
  void Run();
  // Makes Run() return after the current round. Async-signal-safe.
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

 private:
  core::TimerQueue timers_;
  std::mt19937_64 rng_;
  std::vector<zmq::pollitem_t> items_;
  std::vector<std::function<void()>> readers_;
  std::vector<std::function<void()>> idle_hooks_;
  std::atomic<bool> stop_{false};
};

}  // namespace enoki::net
