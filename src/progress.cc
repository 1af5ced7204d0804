#include "progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace game {

ProgressMeter::ProgressMeter(std::optional<std::uint64_t> total, Clock::time_point start)
    : total_(total), start_(start) {}

std::optional<std::string> ProgressMeter::due(Clock::time_point now) {
  if (drawn_ && now - *drawn_ < kInterval) return std::nullopt;
  drawn_ = now;
  return render(now);
}

std::string ProgressMeter::render(Clock::time_point now) const {
  std::string line = "sent " + std::to_string(sent_);
  if (total_) line += " of " + std::to_string(*total_);
  line += ", acknowledged " + std::to_string(acknowledged_);
  if (total_ && *total_ > 0) line += " (" + std::to_string(acknowledged_ * 100 / *total_) + "%)";
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  // The pace is that of acknowledgements: sending runs ahead of them by a window. A server that
  // does not acknowledge leaves only the sending pace.
  const std::uint64_t done = acknowledged_ > 0 ? acknowledged_ : sent_;
  // A rate from less than a second says nothing yet.
  if (elapsed < 1 || done == 0) return line;
  const double rate = static_cast<double>(done) / elapsed;
  line += ", " + std::to_string(std::llround(rate)) + " lines/s";
  if (total_ && *total_ > done) {
    const auto left = static_cast<std::int64_t>(std::llround(static_cast<double>(*total_ - done) / rate));
    line += ", about " + format_duration(std::chrono::seconds(left)) + " left";
  }
  return line;
}

std::string format_duration(std::chrono::seconds duration) {
  const std::int64_t s = duration.count();
  char text[32];
  if (s < 60) {
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  }
  return text;
}

namespace {

void write_all(int fd, const std::string& text) {
  // A terminal that goes away (EIO, EPIPE) only costs the progress line: nothing to report.
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

ProgressLine::ProgressLine(int fd, std::optional<std::uint64_t> total)
    : fd_(fd), meter_(total, ProgressMeter::Clock::now()) {}

void ProgressLine::sent() {
  meter_.sent();
  update();
}

void ProgressLine::acknowledged() {
  meter_.acknowledged();
  update();
}

void ProgressLine::update() {
  const auto line = meter_.due(ProgressMeter::Clock::now());
  if (!line) return;
  std::fflush(stderr);  // whatever stdio holds for the terminal goes before the line
  write_all(fd_, "\r" + *line + "\x1b[K");
  shown_ = true;
}

void ProgressLine::clear() {
  if (!shown_) return;
  write_all(fd_, "\r\x1b[K");
  shown_ = false;
}

Result<RequestSource::Next> ProgressSource::next(Outgoing& out) {
  auto next = inner_.next(out);
  if (next && *next == Next::kReady) line_.sent();
  return next;
}

void ProgressObserver::on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) {
  if (outcome == Outcome::kRejected) line_.clear();
  inner_.on_outcome(line, outcome, reason);
  if (outcome == Outcome::kAccepted || outcome == Outcome::kRejected || outcome == Outcome::kDuplicate) {
    line_.acknowledged();
  }
}

void ProgressObserver::on_accepted(std::uint64_t first, std::uint64_t count) {
  inner_.on_accepted(first, count);
  // Counted one by one, as on_outcome counts them: each may redraw the line (at most 5 a second).
  for (std::uint64_t i = 0; i < count; ++i) line_.acknowledged();
}

}  // namespace game
