// Simulator: the discrete-event environment. A virtual clock that jumps from one event to the
// next; timers are the events. Deterministic for a given seed and sequence of calls: timers due at
// the same instant run in the order they were scheduled.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/timer_queue.h"

namespace enoki::sim {

class Simulator : public core::Env {
 public:
  // Virtual wall-clock time at the start of the simulation (2023-01-01T00:00:00Z, in us).
  static constexpr int64_t kDefaultWallStartUs = 1'672'531'200'000'000;

  explicit Simulator(uint64_t seed, int64_t wall_start_us = kDefaultWallStartUs);

  core::TimePoint Now() const override { return now_; }
  int64_t WallMicros() const override;
  core::TimerId Schedule(core::Duration delay, std::function<void()> fn) override;
  void Cancel(core::TimerId id) override { timers_.Cancel(id); }
  // A generator for what has no stream of its own (core/random.h: models have theirs).
  std::mt19937_64& Rng() override { return rng_; }
  // The seed the simulation was made with, from which models derive their streams.
  uint64_t seed() const { return seed_; }

  // A round is one event.
  void AtEndOfRound(std::function<void()> fn) override { end_of_round_.push_back(std::move(fn)); }
  // Through spdlog's level, stamped with virtual time ("[sim 12.345678s] ...") instead of the
  // host's clock.
  void Log(core::LogLevel level, const std::string& line) override;

  // Runs the next event, if any, and what it left for the end of its round. Returns false when
  // no event is left.
  bool Step();
  // Runs every event due up to `until`, then sets the clock to `until`.
  void RunUntil(core::TimePoint until);
  void RunFor(core::Duration d) { RunUntil(now_ + d); }
  // Runs until `done()` holds, checking after every event; gives up at virtual time `limit` from
  // now. Returns whether `done()` held.
  bool RunUntilTrue(const std::function<bool()>& done, core::Duration limit);
  // Events run so far.
  uint64_t events() const { return events_; }

 private:
  core::TimePoint now_{};
  int64_t wall_start_us_;
  core::TimerQueue timers_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<std::function<void()>> end_of_round_;
  uint64_t events_ = 0;
};

}  // namespace enoki::sim
