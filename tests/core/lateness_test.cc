// LatenessHistogram: counts, the exact maximum, percentiles within the buckets' 1/32, early events
// as 0, very late ones kept, and a reset.

#include "core/lateness.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

namespace enoki::core {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(LatenessHistogramTest, EmptyIsZero) {
  LatenessHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), Duration(0));
  EXPECT_EQ(h.Percentile(0.5), Duration(0));
  EXPECT_EQ(h.Percentile(0.99), Duration(0));
}

// 1, 2, ..., 1000 us: the nearest-rank p50 is 500 us and p99 990 us; the buckets give the upper
// end of the one that holds them, within 1/32 above, and the maximum exactly.
TEST(LatenessHistogramTest, PercentilesWithinTheBucketsPrecision) {
  LatenessHistogram h;
  for (int us = 1000; us >= 1; --us) h.Record(microseconds(us));  // any order
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.max(), microseconds(1000));
  for (auto [q, exact] : {std::pair{0.5, 500e3}, std::pair{0.99, 990e3}, std::pair{0.0, 1e3}}) {
    double got = static_cast<double>(h.Percentile(q).count());
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(got, exact * (1 + 1.0 / 32)) << q;
  }
  EXPECT_EQ(h.Percentile(1), microseconds(1000));
}

// Below 32 ns every value has a bucket of its own; a percentile never passes the maximum.
TEST(LatenessHistogramTest, SmallValuesAreExactAndPercentilesStopAtTheMaximum) {
  LatenessHistogram h;
  for (int ns : {3, 3, 7, 31}) h.Record(nanoseconds(ns));
  EXPECT_EQ(h.Percentile(0.5), nanoseconds(3));
  EXPECT_EQ(h.Percentile(0.75), nanoseconds(7));
  EXPECT_EQ(h.Percentile(1), nanoseconds(31));
  LatenessHistogram one;
  one.Record(nanoseconds(1000001));  // a bucket of width 2^14 ns: its upper end is above
  EXPECT_EQ(one.Percentile(0.5), nanoseconds(1000001));
}

// An event before its time counts as on time; one hours late lands in the last bucket, with its
// maximum kept exactly.
TEST(LatenessHistogramTest, EarlyIsZeroAndVeryLateIsKept) {
  LatenessHistogram h;
  h.Record(milliseconds(-3));
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.max(), Duration(0));
  EXPECT_EQ(h.Percentile(0.5), Duration(0));
  h.Record(std::chrono::hours(10));
  EXPECT_EQ(h.max(), std::chrono::hours(10));
  EXPECT_EQ(h.Percentile(1), std::chrono::hours(10));
  EXPECT_GT(h.Percentile(1), std::chrono::hours(4));
}

TEST(LatenessHistogramTest, ResetForgetsEverything) {
  LatenessHistogram h;
  for (int i = 0; i < 100; ++i) h.Record(milliseconds(7));
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), Duration(0));
  EXPECT_EQ(h.Percentile(0.99), Duration(0));
  h.Record(microseconds(20));
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.max(), microseconds(20));
}

}  // namespace
}  // namespace enoki::core
