// Time, measured one way everywhere: a Stopwatch on the steady clock for durations, and
// wall_seconds() for the wall-clock stamps records carry to other machines.
#pragma once

#include <chrono>

namespace convoy {

class Stopwatch {
 public:
  Stopwatch() : start_(Clock::now()) {}

  // Since construction or the last restart()/lap_milliseconds().
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double milliseconds() const { return seconds() * 1e3; }
  void restart() { start_ = Clock::now(); }
  // milliseconds(), then restart(): consecutive laps add up to the whole.
  double lap_milliseconds() {
    const Clock::time_point now = Clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - start_).count();
    start_ = now;
    return ms;
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
};

// Seconds since the Unix epoch.
inline double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace convoy
