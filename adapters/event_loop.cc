// The real-time event loop: epoll over descriptors and ZeroMQ sockets' ZMQ_FDs, woken by a
// timerfd armed at the next due timer.
#include "adapters/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <system_error>

#include <spdlog/spdlog.h>

namespace enoki::adapters {

namespace {

uint32_t ToEpoll(short events) {
  return (events & ZMQ_POLLIN ? EPOLLIN : 0u) | (events & ZMQ_POLLOUT ? EPOLLOUT : 0u);
}

// As the callbacks take it: anything but readable and writable is an error (ZMQ_POLLERR).
short FromEpoll(uint32_t events) {
  return static_cast<short>((events & EPOLLIN ? ZMQ_POLLIN : 0) |
                            (events & EPOLLOUT ? ZMQ_POLLOUT : 0) |
                            (events & ~(EPOLLIN | EPOLLOUT) ? ZMQ_POLLERR : 0));
}

}  // namespace

EventLoop::EventLoop(uint64_t seed) : rng_(seed) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  // steady_clock is CLOCK_MONOTONIC, so due times arm the timerfd as they are.
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create");
  WatchFd(timer_fd_, ZMQ_POLLIN, [this](short) {
    uint64_t expirations;
    (void)!::read(timer_fd_, &expirations, sizeof expirations);
    armed_ = {};
  });
  post_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (post_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  WatchFd(post_fd_, ZMQ_POLLIN, [this](short) {
    uint64_t count;
    (void)!::read(post_fd_, &count, sizeof count);
    std::vector<std::function<void()>> posted;
    {
      std::lock_guard lock(post_mu_);
      posted.swap(posted_);
    }
    for (auto& fn : posted) fn();
  });
}

EventLoop::~EventLoop() {
  ::close(timer_fd_);
  ::close(post_fd_);
  ::close(epoll_fd_);
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(post_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!::write(post_fd_, &one, sizeof one);
}

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
  return timers_.Add(Now() + std::max(delay, core::Duration(0)), std::move(fn));
}

void EventLoop::Cancel(core::TimerId id) { timers_.Cancel(id); }

void EventLoop::AddSocket(zmq::socket_t& socket, std::function<void()> on_readable) {
  void* handle = socket.handle();
  if (sockets_.contains(handle)) throw std::logic_error("EventLoop::AddSocket: added twice");
  int fd = socket.get(zmq::sockopt::fd);
  // Asked in the next round: what arrived before it was added signalled nobody.
  WatchId watch = WatchFd(fd, ZMQ_POLLIN, [this, handle](short) {
    auto it = sockets_.find(handle);
    if (it != sockets_.end() && !std::exchange(it->second.check, true)) ++to_check_;
  });
  sockets_.emplace(handle, Socket{std::move(on_readable), watch});
  ++to_check_;
}

void EventLoop::RemoveSocket(std::unique_ptr<zmq::socket_t> socket) {
  removed_.push_back(std::move(socket));
}

void EventLoop::Touched(zmq::socket_t& socket) {
  auto it = sockets_.find(socket.handle());
  if (it != sockets_.end() && !std::exchange(it->second.check, true)) ++to_check_;
}

bool EventLoop::Send(zmq::socket_t& socket, zmq::const_buffer frame, zmq::send_flags flags) {
  Touched(socket);  // asked in the next round, whatever this send does
  return socket.send(frame, flags | zmq::send_flags::dontwait).has_value();
}

void EventLoop::CheckSocket(void* handle) {
  auto it = sockets_.find(handle);
  if (it == sockets_.end()) return;
  if (std::exchange(it->second.check, false)) --to_check_;
  int events = 0;
  size_t size = sizeof events;
  if (zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size) != 0) {
    // Interrupted by a signal (a stop): asked again in the next round.
    if (zmq_errno() != EINTR) throw zmq::error_t();
    it->second.check = true;
    ++to_check_;
    return;
  }
  if (!(events & ZMQ_POLLIN)) return;
  // Asked again in the next round: the reader reads a bounded number of messages, and reading
  // may take in the signal of more.
  it->second.check = true;
  ++to_check_;
  it->second.on_readable();
}

EventLoop::WatchId EventLoop::WatchFd(int fd, short events,
                                      std::function<void(short revents)> on_ready) {
  WatchId id = next_watch_++;
  watches_.emplace(id, FdWatch{fd, 0, std::move(on_ready)});
  SetFdEvents(id, events);
  return id;
}

void EventLoop::SetFdEvents(WatchId id, short events) {
  auto it = watches_.find(id);
  if (it == watches_.end() || it->second.events == events) return;
  // A descriptor that waits for nothing is out of the epoll set, which would report its errors
  // and hang-ups all the same.
  int op = it->second.events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  it->second.events = events;
  epoll_event ev{};
  ev.events = ToEpoll(events);
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, op, it->second.fd, &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }
}

void EventLoop::Unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  // The descriptor is still open (the caller closes it after): it leaves the epoll set now.
  if (it->second.events != 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  // The callback may be the one running now: it is destroyed after the round.
  unwatched_.push_back(std::move(it->second.on_ready));
  watches_.erase(it);
}

void EventLoop::AtEndOfRound(std::function<void()> fn) { end_of_round_.push_back(std::move(fn)); }

void EventLoop::RunEndOfRound() {
  // By index: a function may add more.
  for (size_t i = 0; i < end_of_round_.size(); ++i) {
    auto fn = std::move(end_of_round_[i]);
    fn();
  }
  end_of_round_.clear();
}

void EventLoop::Log(core::LogLevel level, const std::string& line) {
  spdlog::log(static_cast<spdlog::level::level_enum>(level), "{}", line);
}

void EventLoop::Run() {
  // Polls at least this often so that Stop() from a signal handler is seen promptly.
  constexpr auto kMaxWait = std::chrono::milliseconds(100);
  constexpr auto kSpinWindow = std::chrono::microseconds(200);
  while (!stop_.load(std::memory_order_relaxed)) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kMaxWait);
    if (auto due = timers_.NextDue()) {
      if (*due <= Now() + kSpinWindow) {
        // Polls without sleeping until a timer this close is due: waking from a sleep costs
        // tens to hundreds of microseconds on an idle (or virtual) CPU, which a link's delay
        // would otherwise carry.
        wait = std::chrono::milliseconds(0);
      } else if (*due != armed_) {
        // Woken a little early, then polling: see above.
        auto ns = (*due - kSpinWindow).time_since_epoch().count();
        itimerspec spec{};
        spec.it_value.tv_sec = ns / 1000000000;
        spec.it_value.tv_nsec = ns % 1000000000;
        if (::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
          throw std::system_error(errno, std::generic_category(), "timerfd_settime");
        }
        armed_ = *due;
      }
    }
    // Sockets to ask now: no sleeping.
    if (to_check_ > 0) wait = std::chrono::milliseconds(0);
    epoll_event ready[256];
    int n = ::epoll_wait(epoll_fd_, ready, 256, static_cast<int>(wait.count()));
    if (n < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    for (int i = 0; i < n; ++i) {
      // By value: epoll_event is packed, its u64 not aligned for a reference.
      WatchId id = ready[i].data.u64;
      auto it = watches_.find(id);  // it may have been unwatched meanwhile
      if (it != watches_.end()) it->second.on_ready(FromEpoll(ready[i].events));
    }
    // The sockets to ask (by handle: a reader may add or remove sockets), every one of them now
    // and then.
    checking_.clear();
    bool all = Now() - checked_all_ >= kMaxWait;
    if (all) checked_all_ = Now();
    if (all || to_check_ > 0) {
      for (const auto& [handle, socket] : sockets_) {
        if (all || socket.check) checking_.push_back(handle);
      }
    }
    for (void* handle : checking_) CheckSocket(handle);
    for (auto& socket : removed_) {
      auto it = sockets_.find(socket->handle());
      if (it == sockets_.end()) continue;
      Unwatch(it->second.watch);  // before the socket (and its ZMQ_FD) closes
      if (it->second.check) --to_check_;
      sockets_.erase(it);
    }
    removed_.clear();
    unwatched_.clear();
    auto now = Now();
    for (auto due = timers_.NextDue(); due && *due <= now; due = timers_.NextDue()) {
      auto fn = timers_.PopDue(now);
      timer_lateness_.Record(Now() - *due);
      (*fn)();
    }
    RunEndOfRound();
  }
}

}  // namespace enoki::adapters
