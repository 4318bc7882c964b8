// The real-time event loop: zmq::poll with the next timer's deadline as timeout.
#include "net/event_loop.h"

#include <chrono>

namespace enoki::net {

EventLoop::EventLoop(uint64_t seed) : rng_(seed) {}

core::TimePoint EventLoop::Now() const {
  return core::TimePoint(std::chrono::duration_cast<core::Duration>(
      std::chrono::steady_clock::now().time_since_epoch()));
}

int64_t EventLoop::WallMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

core::TimerId EventLoop::Schedule(core::Duration delay, std::function<void()> fn) {
  return timers_.Add(Now() + delay, std::move(fn));
}

void EventLoop::Cancel(core::TimerId id) { timers_.Cancel(id); }

void EventLoop::AddSocket(zmq::socket_t& socket, std::function<void()> on_readable) {
  items_.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
  readers_.push_back(std::move(on_readable));
}

void EventLoop::AddIdleHook(std::function<void()> hook) { idle_hooks_.push_back(std::move(hook)); }

void EventLoop::Run() {
  // Polls at least this often so that Stop() from a signal handler is seen promptly.
  constexpr auto kMaxWait = std::chrono::milliseconds(100);
  while (!stop_.load(std::memory_order_relaxed)) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kMaxWait);
    if (auto due = timers_.NextDue()) {
      auto left = *due - Now();
      wait = std::max(std::chrono::milliseconds(0),
                      std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(left)));
    }
    try {
      zmq::poll(items_.data(), items_.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    for (size_t i = 0; i < items_.size(); ++i) {
      if (items_[i].revents & ZMQ_POLLIN) readers_[i]();
    }
    auto now = Now();
    while (auto fn = timers_.PopDue(now)) (*fn)();
    for (auto& hook : idle_hooks_) hook();
  }
}

}  // namespace enoki::net
