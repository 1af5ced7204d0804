// -v/--verbose: one line per step on stderr with the time the step took.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace game {

class Trace {
 public:
  explicit Trace(bool enabled) : enabled_(enabled), last_(Clock::now()) {}

  bool enabled() const { return enabled_; }

  // Reports a finished step and how long it took since the previous one.
  void step(const std::string& what) {
    const auto now = Clock::now();
    if (enabled_) {
      const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
      std::fprintf(stderr, "game: %8.1f ms  %s\n", ms, what.c_str());
    }
    last_ = now;
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  Clock::time_point last_;
};

}  // namespace game
