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
  // Adds a timer due at `when`, which is not earlier than the due time of the last timer PopDue
  // returned (both loops schedule at their clock's now or later, and their clocks never go back;
  // an earlier one is taken as due then). Its id is never 0 and never that of a timer still live.
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
  // A timer's place in the order: (when, seq) compared as one 128-bit number.
  struct Entry {
    uint64_t when;  // the due time's count, its sign bit flipped so that unsigned order is time's
    uint64_t seq;   // order of scheduling: the tie-break
    uint32_t index, generation;
  };
  struct Slot {
    std::function<void()> fn;  // empty: free
    uint32_t generation = 0;
  };
  // 0: the key of the last timer popped; 1 + b for a key whose highest bit that differs from it is
  // bit b of seq; 65 + b, bit b of when.
  static constexpr int kBuckets = 129;

  int BucketOf(const Entry& e) const;
  void Place(const Entry& e);
  bool IsLive(const Entry& e) const;
  // The earliest live entry (cancelled ones met on the way are dropped), or nullptr. Cached in
  // min_bucket_ / min_pos_ until a timer is popped or cancelled, or an earlier one added.
  const Entry* Min();
  // Empties a live timer's slot for reuse.
  void Release(uint32_t index);
  // Removes the cancelled entries once they outnumber the live ones, so that a steady stream of
  // timers cancelled long before they are due (timeouts) does not grow the queue without bound.
  void Compact();

  // A radix heap over the keys, which only grow: a key sits in the bucket of its highest bit that
  // differs from the last key popped; popping the earliest of the lowest bucket that holds any
  // moves the others of that bucket down (each moves at most once per bit). Unlike a binary heap,
  // adding and popping touch memory in order, not a path of cache lines across a large array.
  std::array<std::vector<Entry>, kBuckets> buckets_;
  std::array<uint64_t, (kBuckets + 63) / 64> nonempty_{};  // a bit per bucket
  uint64_t last_when_ = 0, last_seq_ = 0;                  // the last key popped
  int min_bucket_ = -1;                                    // -1: not cached
  size_t min_pos_ = 0;
  size_t entries_ = 0;  // in the buckets, live or cancelled
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;  // slots to reuse
  uint64_t next_seq_ = 0;
  size_t live_ = 0;
};

}  // namespace enoki::core
