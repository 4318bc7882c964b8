// The metrics' text format: histogram buckets, label escaping, numbers.
#include "node/metrics.h"

#include <gtest/gtest.h>

namespace enoki::node {
namespace {

TEST(MetricsTest, HistogramBucketsAreCumulativeAndEndWithInf) {
  static const std::vector<double> bounds = {0.001, 0.01};
  Histogram h(bounds);
  h.Observe(0.0005);
  h.Observe(0.001);  // on a bound: in its bucket (le)
  h.Observe(0.005);
  h.Observe(3);
  MetricsWriter w;
  w.Family("x_seconds", "histogram", "X.");
  w.Histogram("x_seconds", {{"op", "get"}}, h);
  EXPECT_EQ(w.text(),
            "# HELP x_seconds X.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{op=\"get\",le=\"0.001\"} 2\n"
            "x_seconds_bucket{op=\"get\",le=\"0.01\"} 3\n"
            "x_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
            "x_seconds_sum{op=\"get\"} 3.0065\n"
            "x_seconds_count{op=\"get\"} 4\n");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  MetricsWriter w;
  w.Sample("y", {{"a", "q\"b\\s\nn"}}, 12345678);
  w.Sample("z", {}, 0.25);
  EXPECT_EQ(w.text(), "y{a=\"q\\\"b\\\\s\\nn\"} 12345678\nz 0.25\n");
}

}  // namespace
}  // namespace enoki::node
