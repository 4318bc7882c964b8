// LatenessHistogram: how late events came against their due time (a timer against when it was
// due, a shaped message against its arrival time), kept in fixed log buckets as HdrHistogram
// does: recording is a few instructions and never allocates, whatever the number of events, and
// a percentile is within 1/32 (3%) of the true value. The largest lateness is kept exactly. Not
// thread-safe: it belongs to the thread of the loop that records into it.
#pragma once

#include <array>
#include <cstdint>

#include "core/env.h"

namespace enoki::core {

class LatenessHistogram {
 public:
  // Counts one event `late` after its due time (an early one, below 0, counts as 0).
  void Record(Duration late);
  // Forgets every event recorded.
  void Reset();
  uint64_t count() const { return count_; }
  // The largest lateness recorded (0 when none).
  Duration max() const { return Duration(max_ns_); }
  // The lateness that `q` (0 to 1) of the events did not pass: the upper end of the bucket that
  // holds the event of rank ceil(q * count), at most max() (the last bucket: max()); 0 when none
  // was recorded.
  Duration Percentile(double q) const;

 private:
  // 32 buckets per power of two, exact below 32 ns, up to 2^44 ns (about 4.9 hours; later ones
  // count in the last bucket).
  static constexpr int kSubBits = 5;
  static constexpr int kMaxBits = 44;
  static constexpr int kBuckets = (kMaxBits - kSubBits + 1) << kSubBits;
  static int Index(uint64_t ns);
  // The largest value bucket `index` holds.
  static uint64_t UpperBound(int index);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  int64_t max_ns_ = 0;
};

}  // namespace enoki::core
