// Timer queue with lazy cancellation: cancelled entries stay where they are until they are met
// (or outnumber the live ones). Callbacks sit in reused slots; an id names a slot and the
// generation of its use, so an old id never matches a slot's later timer.
#include "core/timer_queue.h"

#include <algorithm>
#include <bit>

namespace enoki::core {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;

uint64_t Encode(TimePoint t) {
  return static_cast<uint64_t>(t.time_since_epoch().count()) ^ kSignBit;
}

TimePoint Decode(uint64_t when) {
  return TimePoint(Duration(static_cast<Duration::rep>(when ^ kSignBit)));
}

}  // namespace

int TimerQueue::BucketOf(const Entry& e) const {
  if (e.when != last_when_) return 65 + (63 - std::countl_zero(e.when ^ last_when_));
  if (e.seq != last_seq_) return 1 + (63 - std::countl_zero(e.seq ^ last_seq_));
  return 0;
}

void TimerQueue::Place(const Entry& e) {
  int b = BucketOf(e);
  buckets_[b].push_back(e);
  nonempty_[b / 64] |= uint64_t{1} << (b % 64);
}

bool TimerQueue::IsLive(const Entry& e) const {
  const Slot& slot = slots_[e.index];
  return slot.generation == e.generation && slot.fn;
}

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
  if (!fn) fn = [] {};                              // (an empty slot is a free one)
  slot.fn = std::move(fn);
  ++live_;
  Entry e{Encode(when), next_seq_++, index, slot.generation};
  ++entries_;
  if (e.when < last_when_) {  // (an equal time comes after `last`: its seq is greater)
    early_.push_back(e);
    std::push_heap(early_.begin(), early_.end(), std::greater<>());
  } else {
    Place(e);
  }
  return (static_cast<TimerId>(slot.generation) << 32) | index;
}

void TimerQueue::Release(uint32_t index) {
  slots_[index].fn = nullptr;
  free_.push_back(index);
  --live_;
}

void TimerQueue::Cancel(TimerId id) {
  auto index = static_cast<uint32_t>(id & 0xffffffff);
  auto generation = static_cast<uint32_t>(id >> 32);
  if (index >= slots_.size() || slots_[index].generation != generation || !slots_[index].fn) return;
  Release(index);
  if (entries_ > 2 * live_ + 1024) Compact();
}

void TimerQueue::DropCancelled(int b) {
  entries_ -= std::erase_if(buckets_[b], [this](const Entry& e) { return !IsLive(e); });
  if (buckets_[b].empty()) nonempty_[b / 64] &= ~(uint64_t{1} << (b % 64));
}

void TimerQueue::PopEarly() {
  std::pop_heap(early_.begin(), early_.end(), std::greater<>());
  early_.pop_back();
  --entries_;
}

void TimerQueue::Compact() {
  for (size_t word = 0; word < nonempty_.size(); ++word) {
    for (uint64_t bits = nonempty_[word]; bits != 0; bits &= bits - 1) {
      DropCancelled(static_cast<int>(word * 64) + std::countr_zero(bits));
    }
  }
  entries_ -= std::erase_if(early_, [this](const Entry& e) { return !IsLive(e); });
  std::make_heap(early_.begin(), early_.end(), std::greater<>());
}

const TimerQueue::Entry* TimerQueue::Min() {
  while (!early_.empty() && !IsLive(early_.front())) PopEarly();
  const Entry* radix = nullptr;
  for (size_t word = 0; word < nonempty_.size() && radix == nullptr;) {
    if (nonempty_[word] == 0) {
      ++word;
      continue;
    }
    int b = static_cast<int>(word * 64) + std::countr_zero(nonempty_[word]);
    DropCancelled(b);
    std::vector<Entry>& bucket = buckets_[b];
    if (bucket.empty()) continue;
    if (b == 0) {  // the earliest already (keys are unique: bucket 0 holds one at most)
      radix = &bucket.front();
      break;
    }
    // Its earliest becomes `last`, alone in bucket 0; the others differ from it in a lower bit.
    auto min = std::min_element(bucket.begin(), bucket.end(),
                                [](const Entry& x, const Entry& y) { return y > x; });
    last_when_ = min->when;
    last_seq_ = min->seq;
    for (const Entry& e : bucket) Place(e);
    bucket.clear();
    nonempty_[b / 64] &= ~(uint64_t{1} << (b % 64));
    word = 0;
  }
  if (early_.empty()) return radix;
  if (radix == nullptr || *radix > early_.front()) return &early_.front();
  return radix;
}

std::optional<TimePoint> TimerQueue::NextDue() {
  const Entry* min = Min();
  if (min == nullptr) return std::nullopt;
  return Decode(min->when);
}

std::optional<std::function<void()>> TimerQueue::PopDue(TimePoint now) {
  const Entry* min = Min();
  if (min == nullptr || Decode(min->when) > now) return std::nullopt;
  uint32_t index = min->index;
  if (!early_.empty() && min == &early_.front()) {
    PopEarly();
  } else {
    buckets_[0].clear();
    nonempty_[0] &= ~uint64_t{1};
    --entries_;
  }
  std::function<void()> fn = std::move(slots_[index].fn);
  Release(index);
  return fn;
}

}  // namespace enoki::core
