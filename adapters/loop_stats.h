// LoopStats: what a process of a real-time run reports of itself (proto::LoopStats, the
// `loop_stats` request, docs/protocol.md): how late its event loop's timers ran and its shaped
// messages were handed on (EventLoop's lateness), how much CPU time it used (getrusage) and how
// busy its host was (/proc/stat), over a window that starts with it or with the last reset. Every
// ZmqTransport serves it for its loop; a run's driver keeps one for its own loop.
#pragma once

#include <cstdint>

#include "adapters/event_loop.h"
#include "net/proto/enoki.pb.h"

namespace enoki::adapters {

class LoopStats {
 public:
  // The first window starts now. `loop` must outlive this.
  explicit LoopStats(EventLoop& loop);

  // The figures of the window that ends now; with `reset`, the next window starts now (the loop's
  // lateness starts afresh). On the loop's thread.
  proto::LoopStats Take(bool reset);

 private:
  // What the CPU counters say now. The host's are jiffies since boot (the first line of
  // /proc/stat: all cores); both 0 when it cannot be read.
  struct CpuReading {
    int64_t process_ns = 0;  // user and system time of every thread of this process
    uint64_t host_busy = 0;
    uint64_t host_total = 0;
  };
  static CpuReading ReadCpu();

  EventLoop& loop_;
  core::TimePoint since_;
  CpuReading start_;
};

}  // namespace enoki::adapters
