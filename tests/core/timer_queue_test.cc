// TimerQueue: order of due timers, cancellation.
#include "core/timer_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
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

// Many timers added, cancelled and run in turns, against a list sorted by (due time, order of
// adding): the same timers run, in the same order. Timers due far off and cancelled the next turn
// (timeouts) pile up until the heap is compacted, several times.
TEST(TimerQueueTest, ManyTimersRunInOrderThroughCancellationsAndCompaction) {
  TimerQueue q;
  std::mt19937_64 rng(7);
  std::vector<std::pair<int, int>> expected;  // (due ms, number), in the order they must run
  std::vector<int> ran;
  std::vector<std::pair<TimerId, std::pair<int, int>>> pending;
  std::vector<TimerId> far;
  int now = 0, next = 0;
  for (int turn = 0; turn < 50; ++turn) {
    for (TimerId id : far) q.Cancel(id);
    far.clear();
    for (int i = 0; i < 100; ++i) far.push_back(q.Add(At(now + 1'000'000), [] { FAIL(); }));
    for (int i = 0; i < 200; ++i) {
      int due = now + static_cast<int>(rng() % 100);
      int n = next++;
      pending.push_back({q.Add(At(due), [&ran, n] { ran.push_back(n); }), {due, n}});
    }
    std::erase_if(pending, [&](const auto& p) {
      if (rng() % 3 != 0) return false;
      q.Cancel(p.first);
      return true;
    });
    now += 10;
    std::vector<std::pair<int, int>> due;
    std::erase_if(pending, [&](const auto& p) {
      if (p.second.first > now) return false;
      due.push_back(p.second);
      return true;
    });
    std::sort(due.begin(), due.end());
    expected.insert(expected.end(), due.begin(), due.end());
    while (auto fn = q.PopDue(At(now))) (*fn)();
    ASSERT_EQ(q.size(), pending.size() + far.size());
  }
  std::vector<int> expected_numbers;
  for (const auto& [due, n] : expected) expected_numbers.push_back(n);
  EXPECT_EQ(ran, expected_numbers);
  EXPECT_GT(ran.size(), 1500u);
}

}  // namespace
}  // namespace enoki::core
