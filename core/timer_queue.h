// TimerQueue: the timer heap shared by the real event loop and the simulator. Not thread-safe:
// it belongs to the one thread that runs the loop.
#pragma once

#include <functional>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "core/env.h"

namespace enoki::core {

class TimerQueue {
 public:
  // Adds a timer due at `when`. Ids are unique and increasing.
  TimerId Add(TimePoint when, std::function<void()> fn);
  // Forgets the timer; harmless if it already ran.
  void Cancel(TimerId id);
  // The earliest due time of a live timer, if any.
  std::optional<TimePoint> NextDue();
  // Removes and returns the callback of the earliest timer due at or before `now`, in (due, id)
  // order; nullopt when none is due. The caller runs it (it may add or cancel timers).
  std::optional<std::function<void()>> PopDue(TimePoint now);
  size_t size() const { return callbacks_.size(); }

 private:
  struct Entry {
    TimePoint when;
    TimerId id;
    bool operator>(const Entry& o) const { return when != o.when ? when > o.when : id > o.id; }
  };
  void DropCancelled();

  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  std::unordered_map<TimerId, std::function<void()>> callbacks_;
  TimerId next_id_ = 1;
};

}  // namespace enoki::core
