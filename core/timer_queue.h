// TimerQueue: the timers shared by the real event loop and the simulator. Not thread-safe: it
// belongs to the one thread that runs the loop.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/env.h"

namespace enoki::core {

class TimerQueue {
 public:
  // Adds a timer due at `when` (an empty `fn`: one that does nothing). Its id is never 0 and never
  // that of a timer still live.
  TimerId Add(TimePoint when, std::function<void()> fn);
  // Forgets the timer; harmless if it already ran, was cancelled or never was.
  void Cancel(TimerId id);
  // The earliest due time of a live timer, if any.
  std::optional<TimePoint> NextDue();
  // Removes and returns the callback of the earliest timer due at or before `now`, in (due, order
  // of Add) order; nullopt when none is due. The caller runs it (it may add or cancel timers).
  std::optional<std::function<void()>> PopDue(TimePoint now);
  size_t size() const { return live_; }

 private:
  // A timer's place in the order: (when, seq) compared as one 128-bit number.
  struct Entry {
    uint64_t when;  // the due time's count, its sign bit flipped so that unsigned order is time's
    uint64_t seq;   // order of scheduling: the tie-break
    uint32_t index, generation;
    bool operator>(const Entry& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  struct Slot {
    std::function<void()> fn;  // empty: free
    uint32_t generation = 0;
  };
  // Bucket 0: the key `last` itself; 1 + b: keys whose highest bit that differs from it is bit b
  // of seq; 65 + b: bit b of when.
  static constexpr int kBuckets = 129;

  int BucketOf(const Entry& e) const;
  void Place(const Entry& e);
  bool IsLive(const Entry& e) const;
  // Drops the cancelled entries of bucket `b` (whose bit in nonempty_ is set).
  void DropCancelled(int b);
  // Removes the earliest entry of early_ (which holds one at least).
  void PopEarly();
  // The earliest live entry, or nullptr; cancelled ones met on the way are dropped. The radix
  // heap's earliest is made the one entry of bucket 0 (see below).
  const Entry* Min();
  // Empties a live timer's slot for reuse.
  void Release(uint32_t index);
  // Removes the cancelled entries once they outnumber the live ones (by 1,024), so that a steady
  // stream of timers cancelled long before they are due (timeouts) does not grow the queue without
  // bound.
  void Compact();

  // A radix heap: a key sits in the bucket of its highest bit that differs from `last`, which
  // only grows. Finding the earliest entry takes the lowest bucket that holds any, makes that
  // entry's key `last` and moves the bucket's others down (each moves at most once per bit), so
  // that the earliest sits alone in bucket 0 until it is popped or cancelled. Unlike a binary heap,
  // adding and finding go through memory in order, not a path of cache lines across a large array;
  // finding costs in proportion to the bucket moved (amortized, once per entry and bit).
  std::array<std::vector<Entry>, kBuckets> buckets_;
  std::array<uint64_t, (kBuckets + 63) / 64> nonempty_{};  // a bit per bucket
  uint64_t last_when_ = 0, last_seq_ = 0;                  // `last`
  // Keys below `last`: timers due before the earliest found last or before one popped already (an
  // event loop asks when the next timer is due, then a callback schedules a shorter one; a
  // simulation that RunUntil stopped short of its next timer schedules the ones it runs up to that
  // timer here). A binary min-heap (std::push_heap with std::greater).
  std::vector<Entry> early_;
  size_t entries_ = 0;  // in the buckets and early_, live or cancelled
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;  // slots to reuse
  uint64_t next_seq_ = 0;
  size_t live_ = 0;
};

}  // namespace enoki::core
