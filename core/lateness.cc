// Log buckets: value v < 32 is bucket v; above, a power of two 2^e (e >= 5) is split into 32
// buckets of width 2^(e - 5), by the five bits after v's leading one.
#include "core/lateness.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace enoki::core {

int LatenessHistogram::Index(uint64_t ns) {
  constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  if (ns < kSub) return static_cast<int>(ns);
  int top = std::bit_width(ns) - 1;  // >= kSubBits
  if (top >= kMaxBits) return kBuckets - 1;
  int shift = top - kSubBits;
  return static_cast<int>(((shift + 1) << kSubBits) + ((ns >> shift) & (kSub - 1)));
}

uint64_t LatenessHistogram::UpperBound(int index) {
  constexpr int kSub = 1 << kSubBits;
  if (index < kSub) return static_cast<uint64_t>(index);
  int shift = (index >> kSubBits) - 1;
  uint64_t lower = static_cast<uint64_t>(kSub + (index & (kSub - 1))) << shift;
  return lower + (uint64_t{1} << shift) - 1;
}

void LatenessHistogram::Record(Duration late) {
  int64_t ns = std::max<int64_t>(0, late.count());
  ++counts_[static_cast<size_t>(Index(static_cast<uint64_t>(ns)))];
  ++count_;
  max_ns_ = std::max(max_ns_, ns);
}

void LatenessHistogram::Reset() {
  counts_.fill(0);
  count_ = 0;
  max_ns_ = 0;
}

Duration LatenessHistogram::Percentile(double q) const {
  if (count_ == 0) return Duration(0);
  auto rank =
      static_cast<uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[static_cast<size_t>(i)];
    // The last bucket has no upper end: what passed it counts there.
    if (seen >= rank && i < kBuckets - 1) {
      return Duration(std::min<int64_t>(max_ns_, static_cast<int64_t>(UpperBound(i))));
    }
  }
  return Duration(max_ns_);
}

}  // namespace enoki::core
