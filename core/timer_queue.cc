// Timer heap with lazy cancellation: cancelled entries stay in the heap until they reach the top.
#include "core/timer_queue.h"

namespace enoki::core {

TimerId TimerQueue::Add(TimePoint when, std::function<void()> fn) {
  TimerId id = next_id_++;
  heap_.push({when, id});
  callbacks_.emplace(id, std::move(fn));
  return id;
}

void TimerQueue::Cancel(TimerId id) { callbacks_.erase(id); }

void TimerQueue::DropCancelled() {
  while (!heap_.empty() && !callbacks_.contains(heap_.top().id)) heap_.pop();
}

std::optional<TimePoint> TimerQueue::NextDue() {
  DropCancelled();
  if (heap_.empty()) return std::nullopt;
  return heap_.top().when;
}

std::optional<std::function<void()>> TimerQueue::PopDue(TimePoint now) {
  DropCancelled();
  if (heap_.empty() || heap_.top().when > now) return std::nullopt;
  auto it = callbacks_.find(heap_.top().id);
  heap_.pop();
  auto fn = std::move(it->second);
  callbacks_.erase(it);
  return fn;
}

}  // namespace enoki::core
