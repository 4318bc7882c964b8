// EventLoop: the real-time environment. One thread polls ZeroMQ sockets and watched file
// descriptors and runs a timer queue on the steady clock; after every round of work it runs what
// the round left for its end (Env::AtEndOfRound: where a node commits its batch of writes and sends
// what it queued). Everything registered with the loop runs on the thread that called Run(). Timers
// fire within microseconds of their time, not at the poll timeout's millisecond granularity: a
// timerfd armed at the next due timer is in the poll set (the link shaper's delays depend on it).
// It is armed 200 us early, and the loop polls without sleeping for the rest: waking from a sleep
// costs tens to hundreds of microseconds on an idle or virtual CPU. The price is up to 200 us of
// busy polling per timer.
//
// Everything is watched through one epoll instance: the watched descriptors, and each ZeroMQ
// socket's ZMQ_FD, which signals that the socket's state may have changed. A round asks ZeroMQ
// about a socket (ZMQ_EVENTS, which costs it a system call or two) only when its ZMQ_FD fired,
// when it was read in the round before (more may wait), or when it was sent on (Touched: a send
// may take in the signal of a message to read). So a round costs one epoll_wait whatever the
// number of sockets and idle connections, and nothing for the sockets that had nothing to do.
// As a backstop, every socket is asked at least every 100 ms.
//
// The loop checks itself: it records how late each timer ran against its due time
// (timer_lateness), and those who hand messages on at an arrival time (the link shaper) record
// how late they did (delivery_lateness), so that an overloaded host shows in the results.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "core/env.h"
#include "core/lateness.h"
#include "core/timer_queue.h"

namespace enoki::adapters {

class EventLoop : public core::Env {
 public:
  explicit EventLoop(uint64_t seed);
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  core::TimePoint Now() const override;
  int64_t WallMicros() const override;
  // A delay below 0 counts as 0: a timer is never due before it was set.
  core::TimerId Schedule(core::Duration delay, std::function<void()> fn) override;
  void Cancel(core::TimerId id) override;
  std::mt19937_64& Rng() override { return rng_; }
  // A round: one poll's socket reads and descriptor events, then the timers that are due.
  void AtEndOfRound(std::function<void()> fn) override;
  // Through spdlog (wall-clock time).
  void Log(core::LogLevel level, const std::string& line) override;

  // Calls `on_readable` whenever `socket` has a message to read (from the next round; also when
  // added by a callback). The socket must stay open until it is removed, or the loop ends; one
  // socket is added once (a second time throws std::logic_error).
  void AddSocket(zmq::socket_t& socket, std::function<void()> on_readable);
  // Stops watching `socket` and closes it, after the current round (safe from inside any
  // callback, the socket's own included).
  void RemoveSocket(std::unique_ptr<zmq::socket_t> socket);
  // Sends `frame` on a socket that was added, without blocking (true: queued; ZeroMQ's
  // exceptions pass through), and has the loop ask the socket in the next round: a send may take
  // in the signal of a message to read. Sends outside the socket's own `on_readable` go here.
  bool Send(zmq::socket_t& socket, zmq::const_buffer frame,
            zmq::send_flags flags = zmq::send_flags::none);
  // The same for reading from an added socket anywhere but in its own `on_readable`.
  void Touched(zmq::socket_t& socket);
  // Calls `on_ready(revents)` whenever file descriptor `fd` is ready for `events` (ZMQ_POLLIN,
  // ZMQ_POLLOUT); revents may also hold ZMQ_POLLERR (an error or hang-up). Returns an id for
  // SetFdEvents and Unwatch. The descriptor must stay open until it is unwatched.
  using WatchId = uint64_t;
  WatchId WatchFd(int fd, short events, std::function<void(short revents)> on_ready);
  // Changes the events a watch waits for (0: none, for now).
  void SetFdEvents(WatchId id, short events);
  // Stops a watch; safe from inside any callback, that watch's own included.
  void Unwatch(WatchId id);
  // Has `fn` run on the loop's thread, in a round soon after (safe from any thread; what is
  // posted when the loop ends does not run).
  void Post(std::function<void()> fn);
  // Runs until Stop() is called (from any thread or a signal handler).
  void Run();
  // Makes Run() return after the current round. Async-signal-safe.
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

  // How late the timers ran: from their due time until their callback started.
  const core::LatenessHistogram& timer_lateness() const { return timer_lateness_; }
  // How late messages held until an arrival time were handed on, recorded by those who hold them
  // (ZmqTransport's shaped deliveries, a run's shaped answers to its callers); on the loop's
  // thread.
  core::LatenessHistogram& delivery_lateness() { return delivery_lateness_; }
  // Both start afresh.
  void ResetLateness() {
    timer_lateness_.Reset();
    delivery_lateness_.Reset();
  }

 private:
  void RunEndOfRound();

  core::TimerQueue timers_;
  std::mt19937_64 rng_;
  // Asks ZeroMQ whether `socket` has a message to read, and reads it if so.
  void CheckSocket(void* handle);

  struct Socket {
    std::function<void()> on_readable;
    WatchId watch;      // its ZMQ_FD
    bool check = true;  // to be asked in the next round
  };
  // By handle; a map: a reader may add a socket (a new peer) while it runs, which must not move
  // the others.
  std::map<void*, Socket> sockets_;
  size_t to_check_ = 0;            // sockets whose `check` is set
  core::TimePoint checked_all_{};  // when every socket was last asked (the backstop)
  std::vector<void*> checking_;    // this round's sockets to ask (reused)
  std::vector<std::function<void()>> end_of_round_;
  struct FdWatch {
    int fd;
    short events;
    std::function<void(short)> on_ready;
  };
  std::map<WatchId, FdWatch> watches_;  // events 0: out of the epoll set
  WatchId next_watch_ = 1;
  int epoll_fd_ = -1;  // the watched descriptors, each with its watch id
  std::vector<std::function<void(short)>> unwatched_;  // freed after the round that unwatched them
  std::vector<std::unique_ptr<zmq::socket_t>> removed_;  // unwatched and closed after the round
  int timer_fd_ = -1;
  int post_fd_ = -1;  // an eventfd: something was posted
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by post_mu_
  core::TimePoint armed_{};                    // when timer_fd_ fires next (the epoch: disarmed)
  std::atomic<bool> stop_{false};
  core::LatenessHistogram timer_lateness_;
  core::LatenessHistogram delivery_lateness_;
};

}  // namespace enoki::adapters
