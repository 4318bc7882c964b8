// Timer queue with lazy cancellation: cancelled entries stay in their bucket until it is gone
// through (or they outnumber the live ones). Callbacks sit in reused slots; an id names a slot and
// the generation of its use, so an old id never matches a slot's later timer.
#include "core/timer_queue.h"

#include <algorithm>
#include <bit>
#include <cassert>

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
  slot.fn = std::move(fn);
  ++live_;
  // Never before the last key popped: the radix heap's keys only grow.
  Entry e{std::max(Encode(when), last_when_), next_seq_++, index, slot.generation};
  Place(e);
  ++entries_;
  if (min_bucket_ >= 0 && e.when < buckets_[min_bucket_][min_pos_].when) {
    min_bucket_ = BucketOf(e);
    min_pos_ = buckets_[min_bucket_].size() - 1;
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
  if (min_bucket_ >= 0 && buckets_[min_bucket_][min_pos_].index == index) min_bucket_ = -1;
  Release(index);
  if (entries_ > 2 * live_ + 1024) Compact();
}

void TimerQueue::Compact() {
  for (int b = 0; b < kBuckets; ++b) {
    entries_ -= std::erase_if(buckets_[b], [this](const Entry& e) { return !IsLive(e); });
    if (buckets_[b].empty()) nonempty_[b / 64] &= ~(uint64_t{1} << (b % 64));
  }
  min_bucket_ = -1;
}

const TimerQueue::Entry* TimerQueue::Min() {
  if (min_bucket_ >= 0) return &buckets_[min_bucket_][min_pos_];
  for (size_t word = 0; word < nonempty_.size(); ++word) {
    while (nonempty_[word] != 0) {
      int b = static_cast<int>(word * 64) + std::countr_zero(nonempty_[word]);
      std::vector<Entry>& bucket = buckets_[b];
      entries_ -= std::erase_if(bucket, [this](const Entry& e) { return !IsLive(e); });
      if (bucket.empty()) {
        nonempty_[word] &= ~(uint64_t{1} << (b % 64));
        continue;
      }
      size_t best = 0;
      for (size_t i = 1; i < bucket.size(); ++i) {
        const Entry& e = bucket[i];
        if (e.when < bucket[best].when ||
            (e.when == bucket[best].when && e.seq < bucket[best].seq)) {
          best = i;
        }
      }
      min_bucket_ = b;
      min_pos_ = best;
      return &bucket[best];
    }
  }
  return nullptr;
}

std::optional<TimePoint> TimerQueue::NextDue() {
  const Entry* min = Min();
  if (min == nullptr) return std::nullopt;
  return Decode(min->when);
}

std::optional<std::function<void()>> TimerQueue::PopDue(TimePoint now) {
  const Entry* min = Min();
  if (min == nullptr || Decode(min->when) > now) return std::nullopt;
  const int b = min_bucket_;
  const Entry popped = *min;
  min_bucket_ = -1;
  std::vector<Entry>& bucket = buckets_[b];
  last_when_ = popped.when;
  last_seq_ = popped.seq;
  // The others of its bucket differ from the new last key in a lower bit: each goes down.
  for (const Entry& e : bucket) {
    if (e.seq != popped.seq) Place(e);
  }
  --entries_;
  bucket.clear();
  nonempty_[b / 64] &= ~(uint64_t{1} << (b % 64));
  std::function<void()> fn = std::move(slots_[popped.index].fn);
  Release(popped.index);
  return fn;
}

}  // namespace enoki::core
