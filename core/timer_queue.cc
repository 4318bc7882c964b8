// Timer heap with lazy cancellation: cancelled entries stay in the heap until they reach the top
// (or outnumber the live ones). Callbacks sit in reused slots; an id names a slot and the
// generation of its use, so an old id never matches a slot's later timer.
#include "core/timer_queue.h"

#include <algorithm>

namespace enoki::core {

TimerId TimerQueue::Add(TimePoint when, std::function<void()> fn) {
  uint32_t index;
  if (free_.empty()) {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    index = free_.back();
    free_.pop_back();
  }
  Slot& slot = slots_[index];
  if (++slot.generation == 0) slot.generation = 1;  // an id is never 0 (0: no timer)
  slot.fn = std::move(fn);
  ++live_;
  heap_.push_back({when, next_seq_++, index, slot.generation});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  return (static_cast<TimerId>(slot.generation) << 32) | index;
}

TimerQueue::Slot* TimerQueue::Live(uint32_t index, uint32_t generation) {
  if (index >= slots_.size()) return nullptr;
  Slot& slot = slots_[index];
  return slot.generation == generation && slot.fn ? &slot : nullptr;
}

void TimerQueue::Release(uint32_t index) {
  slots_[index].fn = nullptr;
  free_.push_back(index);
  --live_;
}

void TimerQueue::Cancel(TimerId id) {
  auto index = static_cast<uint32_t>(id & 0xffffffff);
  if (Live(index, static_cast<uint32_t>(id >> 32)) == nullptr) return;
  Release(index);
  if (heap_.size() > 2 * live_ + 1024) Compact();
}

void TimerQueue::Compact() {
  std::erase_if(heap_, [this](const Entry& e) { return Live(e.index, e.generation) == nullptr; });
  std::make_heap(heap_.begin(), heap_.end(), std::greater<>());
}

void TimerQueue::DropCancelled() {
  while (!heap_.empty() && Live(heap_.front().index, heap_.front().generation) == nullptr) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
}

std::optional<TimePoint> TimerQueue::NextDue() {
  DropCancelled();
  if (heap_.empty()) return std::nullopt;
  return heap_.front().when;
}

std::optional<std::function<void()>> TimerQueue::PopDue(TimePoint now) {
  DropCancelled();
  if (heap_.empty() || heap_.front().when > now) return std::nullopt;
  uint32_t index = heap_.front().index;
  std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
  heap_.pop_back();
  std::function<void()> fn = std::move(slots_[index].fn);
  Release(index);
  return fn;
}

}  // namespace enoki::core
