// The progress line of a batch on a terminal: one line on stderr, redrawn in place a few times a
// second, erased before anything else is printed and at the end. Nothing else here knows about
// terminals: the meter only counts and renders text, so it is tested without one.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "session.h"

namespace game {

class ProgressMeter {
 public:
  using Clock = std::chrono::steady_clock;
  // Redraws at most this often (5 Hz): fast enough to look alive, slow enough not to flicker
  // or cost anything next to the network.
  static constexpr std::chrono::milliseconds kInterval{200};

  // `total`: the number of requests the batch holds, when known before sending (a file).
  ProgressMeter(std::optional<std::uint64_t> total, Clock::time_point start);
  void sent() { ++sent_; }
  void acknowledged() { ++acknowledged_; }
  // The line to draw at `now`, or nullopt when the previous one was drawn less than kInterval ago.
  std::optional<std::string> due(Clock::time_point now);
  // "sent 1200 of 5000, acknowledged 1100 (22%), 850 lines/s, about 5s left": the rate and time
  // left from the acknowledgements (from sending, while there are none).
  std::string render(Clock::time_point now) const;

 private:
  std::optional<std::uint64_t> total_;
  Clock::time_point start_;
  std::optional<Clock::time_point> drawn_;
  std::uint64_t sent_ = 0;
  std::uint64_t acknowledged_ = 0;
};

// "4s", "3m05s", "2h07m".
std::string format_duration(std::chrono::seconds duration);

// Draws a meter's lines on a terminal (fd): "\r" + line + erase to the end of the line.
class ProgressLine {
 public:
  ProgressLine(int fd, std::optional<std::uint64_t> total);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine() { clear(); }
  void sent();
  void acknowledged();
  // Erases the line (before other output on the same terminal, and at the end); the next
  // update draws it again.
  void clear();

 private:
  void update();
  int fd_;
  ProgressMeter meter_;
  bool shown_ = false;
};

// Feeds a ProgressLine from a batch run: a request counts as sent when the session takes it
// from the source, as acknowledged when the server accepts or rejects it. The line is erased
// before the wrapped observer prints (a rejection on stderr) and redrawn by the next update.
class ProgressSource : public RequestSource {
 public:
  ProgressSource(RequestSource& inner, ProgressLine& line) : inner_(inner), line_(line) {}
  Result<Next> next(Outgoing& out) override;
  int wait_fd() const override { return inner_.wait_fd(); }

 private:
  RequestSource& inner_;
  ProgressLine& line_;
};

class ProgressObserver : public Observer {
 public:
  ProgressObserver(Observer& inner, ProgressLine& line) : inner_(inner), line_(line) {}
  void on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) override;
  void on_accepted(std::uint64_t first, std::uint64_t count) override;

 private:
  Observer& inner_;
  ProgressLine& line_;
};

}  // namespace game
