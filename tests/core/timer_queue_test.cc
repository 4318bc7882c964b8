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
// (timeouts) pile up until the queue is compacted, several times.
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

// A timer without a callback is one that does nothing: it counts, runs and is gone.
TEST(TimerQueueTest, ATimerWithoutACallbackRunsAsNothing) {
  TimerQueue q;
  TimerId id = q.Add(At(5), {});
  EXPECT_NE(id, 0u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.NextDue(), At(5));
  auto fn = q.PopDue(At(5));
  ASSERT_TRUE(fn.has_value());
  (*fn)();
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.NextDue().has_value());
}

// The event loop asks when the next timer is due, then schedules one due earlier before popping
// any: that one comes first. So does one due before the last one popped.
TEST(TimerQueueTest, AnEarlierTimerAddedAfterAskingComesFirst) {
  TimerQueue q;
  std::vector<int> order;
  q.Add(At(100), [&] { order.push_back(1); });
  q.Add(At(200), [&] { order.push_back(2); });
  EXPECT_EQ(q.NextDue(), At(100));
  q.Add(At(50), [&] { order.push_back(0); });
  EXPECT_EQ(q.NextDue(), At(50));
  while (auto fn = q.PopDue(At(100))) (*fn)();
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  q.Add(At(100), [&] { order.push_back(4); });
  q.Add(At(90), [&] { order.push_back(3); });
  EXPECT_EQ(q.NextDue(), At(90));
  while (auto fn = q.PopDue(At(100))) (*fn)();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 3, 4}));
  EXPECT_EQ(q.NextDue(), At(200));
}

// Timeouts cancelled in the order they were set (the earliest each time), the loop asking for the
// next due time between: every answer right. (What this costs: bench/micro.cc,
// BM_TimerQueueTimeouts.)
TEST(TimerQueueTest, CancellingTheEarliestAgainAndAgainStaysRight) {
  TimerQueue q;
  std::vector<TimerId> ids;
  q.Add(At(1), [] {});
  ASSERT_TRUE(q.PopDue(At(1)).has_value());
  for (int i = 0; i < 10000; ++i) ids.push_back(q.Add(At(30000 + i), [] { FAIL(); }));
  for (int i = 0; i < 10000; ++i) {
    q.Cancel(ids[static_cast<size_t>(i)]);
    ids.push_back(q.Add(At(40000 + i), [] {}));
    ASSERT_EQ(q.NextDue(), At(i + 1 < 10000 ? 30000 + i + 1 : 40000)) << i;
  }
  EXPECT_EQ(q.size(), 10000u);
  int ran = 0;
  while (auto fn = q.PopDue(At(100000))) {
    (*fn)();
    ++ran;
  }
  EXPECT_EQ(ran, 10000);
}

// Against a sorted list: timers due from a nanosecond to days ahead, before time 0 and after,
// many at the same instant, cancelled (often the earliest, which the queue keeps at hand), asked
// for and popped in random turns. Every NextDue and every pop is the list's.
TEST(TimerQueueTest, MatchesASortedListOverEveryScaleOfTime) {
  TimerQueue q;
  std::mt19937_64 rng(11);
  struct Pending {
    TimePoint when;
    int n;
    TimerId id;
  };
  std::vector<Pending> pending;  // kept sorted by (when, n)
  std::vector<int> ran, expected;
  TimePoint now(std::chrono::hours(-1));
  int next = 0;
  auto earliest = [&] {
    return std::min_element(pending.begin(), pending.end(), [](const auto& a, const auto& b) {
      return a.when != b.when ? a.when < b.when : a.n < b.n;
    });
  };
  for (int turn = 0; turn < 20000; ++turn) {
    switch (rng() % 5) {
      case 0:
      case 1: {  // add, due 0 to 2^(0..50) ns from now
        Duration ahead(static_cast<int64_t>(rng() % (int64_t{1} << (rng() % 51))));
        if (rng() % 4 == 0) ahead = Duration(0);
        int n = next++;
        TimerId id = q.Add(now + ahead, [&ran, n] { ran.push_back(n); });
        pending.push_back({now + ahead, n, id});
        break;
      }
      case 2: {  // cancel: the earliest, or any
        if (pending.empty()) break;
        auto it = rng() % 2 == 0 ? earliest() : pending.begin() + rng() % pending.size();
        q.Cancel(it->id);
        pending.erase(it);
        break;
      }
      case 3: {  // ask
        auto due = q.NextDue();
        if (pending.empty()) {
          ASSERT_FALSE(due.has_value()) << turn;
        } else {
          ASSERT_EQ(due, earliest()->when) << turn;
        }
        break;
      }
      case 4: {  // move the clock on to the earliest, or a little, and pop what is due
        if (!pending.empty() && rng() % 2 == 0) {
          now = std::max(now, earliest()->when);
        } else {
          now += Duration(static_cast<int64_t>(rng() % 1000));
        }
        while (!pending.empty() && earliest()->when <= now) {
          auto it = earliest();
          expected.push_back(it->n);
          pending.erase(it);
        }
        while (auto fn = q.PopDue(now)) (*fn)();
        ASSERT_EQ(ran, expected) << turn;
        break;
      }
    }
    ASSERT_EQ(q.size(), pending.size()) << turn;
  }
  EXPECT_GT(ran.size(), 1000u);
}

}  // namespace
}  // namespace enoki::core
