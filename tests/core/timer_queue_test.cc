// TimerQueue: order of due timers, cancellation.
#include "core/timer_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace enoki::core {
namespace {

TimePoint At(int ms) { return TimePoint(std::chrono::milliseconds(ms)); }

TEST(TimerQueueTest, RunsInDueThenInsertionOrder) {
  TimerQueue q;
  std::vector<int> order;
  q.Add(At(20), [&] { order.push_back(3); });
  q.Add(At(10), [&] { order.push_back(1); });
  q.Add(At(10), [&] { order.push_back(2); });
  EXPECT_EQ(q.NextDue(), At(10));
  while (auto fn = q.PopDue(At(100))) (*fn)();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(q.NextDue().has_value());
}

TEST(TimerQueueTest, NothingBeforeItsTime) {
  TimerQueue q;
  q.Add(At(10), [] {});
  EXPECT_FALSE(q.PopDue(At(9)).has_value());
  EXPECT_TRUE(q.PopDue(At(10)).has_value());
}

TEST(TimerQueueTest, CancelledTimersNeverRun) {
  TimerQueue q;
  bool ran = false;
  TimerId id = q.Add(At(5), [&] { ran = true; });
  q.Add(At(7), [] {});
  q.Cancel(id);
  EXPECT_EQ(q.NextDue(), At(7));
  while (auto fn = q.PopDue(At(100))) (*fn)();
  EXPECT_FALSE(ran);
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace enoki::core
