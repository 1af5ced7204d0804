// What `game batch` prints: rejections (or every result as a JSON record with --json) as each
// result is known, then the summary. A closed or full standard output stops the run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "batch.h"
#include "error.h"
#include "session.h"
#include "signals.h"

namespace game {

class BatchReport : public Observer, public InvalidLines {
 public:
  // `stop` is told when standard output cannot be written, so that the session stops sending.
  BatchReport(std::string name, bool json, StopRequests& stop)
      : name_(std::move(name)), json_(json), stop_(stop) {}
  void on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) override;
  void on_accepted(std::uint64_t first, std::uint64_t count) override;
  void on_invalid(std::uint64_t line, const std::string& what) override;
  // The summary line (or record); `error` is the run's error, if it failed, and `resume` the
  // command that continues it, if there is one. On stdout, or on stderr once stdout has failed.
  Status summary(const Tally& tally, std::uint64_t invalid, const Error* error, const std::string& resume);
  std::optional<std::uint64_t> first_not_delivered() const { return first_not_delivered_; }
  std::uint64_t invalid_lines() const { return invalid_; }

 private:
  void print_record(const std::string& line);
  std::string name_;
  bool json_;
  StopRequests& stop_;
  std::string text_summary(const Tally& tally, std::uint64_t invalid) const;
  std::optional<std::uint64_t> first_not_delivered_;
  std::optional<std::uint64_t> first_rejected_;
  std::uint64_t invalid_ = 0;
  std::optional<Error> output_error_;
};

}  // namespace game
