// The virtual clock and its event queue.
#include "sim/simulator.h"

#include <chrono>
#include <cstdio>

#include <spdlog/spdlog.h>

namespace enoki::sim {

Simulator::Simulator(uint64_t seed, int64_t wall_start_us)
    : wall_start_us_(wall_start_us), seed_(seed), rng_(seed) {}

int64_t Simulator::WallMicros() const {
  return wall_start_us_ +
         std::chrono::duration_cast<std::chrono::microseconds>(now_.time_since_epoch()).count();
}

core::TimerId Simulator::Schedule(core::Duration delay, std::function<void()> fn) {
  if (delay < core::Duration::zero()) delay = core::Duration::zero();
  return timers_.Add(now_ + delay, std::move(fn));
}

bool Simulator::Step() {
  auto due = timers_.NextDue();
  if (!due) return false;
  now_ = *due;
  auto fn = timers_.PopDue(now_);
  ++events_;
  (*fn)();
  // By index: a function may add more.
  for (size_t i = 0; i < end_of_round_.size(); ++i) {
    auto end = std::move(end_of_round_[i]);
    end();
  }
  end_of_round_.clear();
  return true;
}

void Simulator::Log(core::LogLevel level, const std::string& line) {
  auto l = static_cast<spdlog::level::level_enum>(level);
  if (!spdlog::should_log(l)) return;
  std::fprintf(stderr, "[sim %.6fs] %s %s\n", core::ToMillis(now_.time_since_epoch()) / 1000,
               spdlog::level::to_string_view(l).data(), line.c_str());
}

void Simulator::RunUntil(core::TimePoint until) {
  while (true) {
    auto due = timers_.NextDue();
    if (!due || *due > until) break;
    Step();
  }
  if (now_ < until) now_ = until;
}

bool Simulator::RunUntilTrue(const std::function<bool()>& done, core::Duration limit) {
  core::TimePoint end = now_ + limit;
  while (!done()) {
    auto due = timers_.NextDue();
    if (!due || *due > end) {
      if (now_ < end) now_ = end;
      return done();
    }
    Step();
  }
  return true;
}

}  // namespace enoki::sim
