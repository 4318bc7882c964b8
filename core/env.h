// The environment: the only way node and simulation code reaches time, timers and randomness.
// Real mode implements it with the steady clock and a poll loop (adapters/event_loop.h); simulation
// with a virtual clock that jumps to the next event (sim/simulator.h). Code written against Env
// runs unchanged in both.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>

namespace enoki::core {

// A monotonic clock with no now(): its time comes from an Env.
struct MonoClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<MonoClock>;
  static constexpr bool is_steady = true;
};
using Duration = std::chrono::nanoseconds;
using TimePoint = MonoClock::time_point;
using TimerId = uint64_t;

// Log levels; their values are spdlog's (spdlog::level::level_enum), so a log sink converts them
// by a cast.
enum class LogLevel { kDebug = 1, kInfo = 2, kWarn = 3, kError = 4, kCritical = 5 };

// Converts a duration to fractional milliseconds, for reports and logs.
inline double ToMillis(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

class Env {
 public:
  virtual ~Env() = default;

  // Monotonic time. Never goes back. All processes on one host read the same clock in real mode.
  virtual TimePoint Now() const = 0;
  // Wall-clock time in microseconds since the Unix epoch (virtual in simulation). Used only for
  // hybrid logical clocks; may jump.
  virtual int64_t WallMicros() const = 0;
  // Runs `fn` once, `delay` from now, on the same thread as everything else. Returns an id that
  // Cancel accepts. Timers due at the same instant run in the order they were scheduled.
  virtual TimerId Schedule(Duration delay, std::function<void()> fn) = 0;
  // Cancels a timer that has not run yet; a no-op for one that ran or was cancelled.
  virtual void Cancel(TimerId id) = 0;
  // The seeded random generator of this environment.
  virtual std::mt19937_64& Rng() = 0;
  // Runs `fn` once at the end of the current round of events: after the event that runs now
  // (a message, a timer) and what it set off at once, before the environment waits or moves its
  // clock. Functions added during that end run in the same round, in the order they were added.
  // Where a node commits what a round changed (Node::Flush).
  virtual void AtEndOfRound(std::function<void()> fn) = 0;
  // Writes one log line at `level`, stamped with this environment's time: the host's clock in
  // real mode, virtual time in simulation.
  virtual void Log(LogLevel level, const std::string& line) = 0;
};

}  // namespace enoki::core
