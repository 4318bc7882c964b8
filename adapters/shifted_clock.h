// ShiftedClock: an environment whose clock reads a fixed offset ahead of another's (behind, for a
// negative one), everything else being the other's. `enoki node --test-clock-offset-ms` runs a
// node on one, so that a test on one host has a node whose trace clock (its trace's times and its
// answers to ClockRequest) differs from the others' by a known amount, as on another host. The
// node's timers are set by delays, so they run as they would unshifted.
#pragma once

#include "core/env.h"

namespace enoki::adapters {

class ShiftedClock : public core::Env {
 public:
  // `base` outlives this.
  ShiftedClock(core::Env& base, core::Duration offset) : base_(base), offset_(offset) {}

  core::TimePoint Now() const override { return base_.Now() + offset_; }
  int64_t WallMicros() const override { return base_.WallMicros(); }
  core::TimerId Schedule(core::Duration delay, std::function<void()> fn) override {
    return base_.Schedule(delay, std::move(fn));
  }
  void Cancel(core::TimerId id) override { base_.Cancel(id); }
  std::mt19937_64& Rng() override { return base_.Rng(); }
  void AtEndOfRound(std::function<void()> fn) override { base_.AtEndOfRound(std::move(fn)); }
  void Log(core::LogLevel level, const std::string& line) override { base_.Log(level, line); }

 private:
  core::Env& base_;
  core::Duration offset_;
};

}  // namespace enoki::adapters
