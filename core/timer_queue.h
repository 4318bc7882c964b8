// TimerQueue: the timer heap shared by the real event loop and the simulator. Not thread-safe:
// it belongs to the one thread that runs the loop.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "core/env.h"

namespace enoki::core {

class TimerQueue {
 public:
  // Adds a timer due at `when`. Its id is never 0 and never that of a timer still live.
  TimerId Add(TimePoint when, std::function<void()> fn);
  // Forgets the timer; harmless if it already ran.
  void Cancel(TimerId id);
  // The earliest due time of a live timer, if any.
  std::optional<TimePoint> NextDue();
  // Removes and returns the callback of the earliest timer due at or before `now`, in (due, order
  // of Add) order; nullopt when none is due. The caller runs it (it may add or cancel timers).
  std::optional<std::function<void()>> PopDue(TimePoint now);
  size_t size() const { return live_; }

 private:
  struct Entry {
    TimePoint when;
    uint64_t seq;  // order of scheduling: the tie-break
    uint32_t index, generation;
    bool operator>(const Entry& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  struct Slot {
    std::function<void()> fn;  // empty: free
    uint32_t generation = 0;
  };
  // The slot of a live timer, or nullptr (it ran, was cancelled, or never existed).
  Slot* Live(uint32_t index, uint32_t generation);
  // Empties a live timer's slot for reuse.
  void Release(uint32_t index);
  void DropCancelled();
  // Removes the cancelled entries once they outnumber the live ones, so that a steady stream of
  // timers cancelled long before they are due (timeouts) does not grow the heap without bound.
  void Compact();

  std::vector<Entry> heap_;  // a min-heap by (when, seq): std::push_heap with std::greater
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;  // slots to reuse
  uint64_t next_seq_ = 0;
  size_t live_ = 0;
};

}  // namespace enoki::core
