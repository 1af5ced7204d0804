#include "batch_report.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "text.h"

namespace game {
namespace {

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAccepted:
      return "accepted";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kDuplicate:
      return "duplicate";
    case Outcome::kDelivered:
      return "delivered";
    case Outcome::kNotDelivered:
      return "not_delivered";
  }
  return "unknown";
}

std::string json_line(const nlohmann::json& value) {
  // Server text may be invalid UTF-8: replace rather than throw.
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

// One whole record per write and a flush after it: a consumer of --follow --json sees each
// result at once, and a stop (signal) between two records never leaves half of one behind.
void BatchReport::print_record(const std::string& line) {
  if (output_error_) return;
  if (std::fwrite(line.data(), 1, line.size(), stdout) == line.size() && std::fflush(stdout) == 0) return;
  output_error_ =
      make_error(Exit::kIoErr, std::string("cannot write standard output: ") + std::strerror(errno));
  stop_.stop(*output_error_);
}

void BatchReport::on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) {
  if (outcome == Outcome::kNotDelivered && !first_not_delivered_) first_not_delivered_ = line;
  if (outcome == Outcome::kRejected && !first_rejected_) first_rejected_ = line;
  if (json_) {
    nlohmann::json object = {{"line", line}, {"result", outcome_name(outcome)}};
    if (outcome == Outcome::kRejected) object["reason"] = reason;
    print_record(json_line(object));
    return;
  }
  if (outcome == Outcome::kRejected) {
    std::fprintf(stderr, "%s:%llu: rejected by the server: %s\n", name_.c_str(),
                 static_cast<unsigned long long>(line), text::printable(reason).c_str());
  }
}

// An accepted line prints nothing but its --json record.
void BatchReport::on_accepted(std::uint64_t first, std::uint64_t count) {
  if (json_) Observer::on_accepted(first, count);
}

void BatchReport::on_invalid(std::uint64_t line, const std::string& what) {
  ++invalid_;
  std::fprintf(stderr, "%s:%llu: %s\n", name_.c_str(), static_cast<unsigned long long>(line), what.c_str());
  if (json_) print_record(json_line({{"line", line}, {"result", "invalid"}, {"reason", what}}));
}

// Counts, and where the trouble starts: the place a player looks first.
std::string BatchReport::text_summary(const Tally& tally, std::uint64_t invalid) const {
  const auto at = [this](std::uint64_t line) { return name_ + ":" + std::to_string(line); };
  std::string text = std::to_string(tally.sent) + " sent, " + std::to_string(tally.accepted) + " accepted, " +
                     std::to_string(tally.rejected) + " rejected";
  if (first_rejected_) text += " (the first at " + at(*first_rejected_) + ")";
  if (tally.duplicate > 0) text += ", " + std::to_string(tally.duplicate) + " already applied earlier";
  if (tally.delivered > 0)
    text += ", " + std::to_string(tally.delivered) + " delivered without acknowledgement";
  if (tally.not_delivered > 0) {
    text += ", " + std::to_string(tally.not_delivered) + " not acknowledged";
    if (first_not_delivered_) text += " (from " + at(*first_not_delivered_) + " on)";
  }
  if (invalid > 0) text += ", " + std::to_string(invalid) + " invalid lines skipped";
  return text + "\n";
}

Status BatchReport::summary(const Tally& tally, std::uint64_t invalid, const Error* error,
                            const std::string& resume) {
  std::string text;
  if (json_ && !output_error_) {
    nlohmann::json object = {{"sent", tally.sent},
                             {"accepted", tally.accepted},
                             {"rejected", tally.rejected},
                             {"duplicate", tally.duplicate},
                             {"delivered", tally.delivered},
                             {"not_delivered", tally.not_delivered},
                             {"invalid", invalid}};
    object["first_unacknowledged_line"] =
        first_not_delivered_ ? nlohmann::json(*first_not_delivered_) : nlohmann::json(nullptr);
    if (error != nullptr) object["error"] = error->message;
    object["resume"] = resume.empty() ? nlohmann::json(nullptr) : nlohmann::json(resume);
    text = json_line({{"summary", object}});
  } else {
    text = text_summary(tally, invalid);
  }
  if (output_error_) {  // the summary still reaches the user, on the stream that works
    std::fputs(text.c_str(), stderr);
    return *output_error_;
  }
  print_record(text);
  if (output_error_) return *output_error_;
  return {};
}

}  // namespace game
