#include "session.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "protocol.h"
#include "text.h"

namespace game {
namespace {

using Clock = std::chrono::steady_clock;

// Largest data message when coalescing: below every implementation's maximum packet (RFC 4253
// 6.1 guarantees 32768 bytes of payload).
constexpr std::size_t kMaxChunk = 32 * 1024 - 64;
// Between two reads of the server's responses, at most this many single-PDU writes.
constexpr int kWritesPerRound = 256;

std::string count_text(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

class Pump {
 public:
  Pump(Connection& connection, Channel& channel, RequestSource& source, Observer& observer,
       const SessionOptions& options, Trace& trace, Tally& tally)
      : connection_(connection),
        channel_(channel),
        source_(source),
        observer_(observer),
        options_(options),
        trace_(trace),
        tally_(tally),
        acknowledging_(options.acks == AckMode::kYes) {}

  Status run() {
    Status status = stream();
    if (status) status = finish();
    if (status && stop_requests() > 0) status = stopped();
    if (!status) fail_in_flight();
    return status;
  }

 private:
  Status stream() {
    last_progress_ = Clock::now();
    for (;;) {
      auto open = read_responses();
      if (!open) return std::move(open).error();
      if (!*open) return closed_early();
      GAME_TRY(check_stop());
      if (stopping()) return {};
      auto wrote = write_ready();
      if (!wrote) return std::move(wrote).error();
      if (source_done_ && !have_next_) return {};
      if (*wrote) continue;
      GAME_TRY(wait(waiting_for_source_ ? source_.wait_fd() : -1, deadline()));
      if (Clock::now() >= deadline()) return timed_out();
    }
  }

  // After the last request: EOF, then acknowledgements or the server's close, then our close.
  Status finish() {
    GAME_TRY(channel_.send_eof());
    trace_.step("sent " + count_text(tally_.sent, "request") + " and EOF");
    const auto grace_end = Clock::now() + options_.ack_grace;
    last_progress_ = Clock::now();
    for (;;) {
      auto open = read_responses();
      if (!open) return std::move(open).error();
      if (in_flight_.empty()) break;
      GAME_TRY(check_stop());
      if (!acknowledging_ && !*open) {
        trace_.step("server closed the channel without acknowledging: delivered, not acknowledged");
        resolve_in_flight(Outcome::kDelivered);
        break;
      }
      if (!*open) return closed_early();
      if (!acknowledging_ && (options_.acks == AckMode::kNo || Clock::now() >= grace_end)) {
        // A server that neither acknowledges nor closes: close it ourselves. Its CLOSE answers
        // ours only after everything we sent before it, so it is the proof of delivery.
        GAME_TRY(close_handshake());
        trace_.step(std::string(options_.acks == AckMode::kNo
                                    ? "acks = \"no\""
                                    : "no acknowledgement within the grace period") +
                    ": delivered, not acknowledged");
        resolve_in_flight(Outcome::kDelivered);
        return {};
      }
      auto until = std::min(deadline(), stop_deadline_);
      if (!acknowledging_ && options_.acks == AckMode::kAuto) until = std::min(until, grace_end);
      GAME_TRY(wait(-1, until));
      if (Clock::now() >= deadline()) return timed_out();
    }
    trace_.step("all requests resolved");
    return close_handshake();
  }

  // RFC 4254 5.3: our CLOSE, then the server's, bounded by --timeout. Disconnecting earlier could
  // make the server drop what it has received but not yet processed.
  Status close_handshake() {
    if (channel_.remote_closed()) return {};
    GAME_TRY(channel_.close());
    // A server still working through what we sent returns window as it goes: that is progress.
    auto until = Clock::now() + options_.timeout;
    std::uint32_t window = channel_.window();
    while (!channel_.remote_closed()) {
      GAME_TRY(channel_.process_incoming());
      if (channel_.remote_closed()) break;
      GAME_TRY(check_stop());
      if (channel_.window() != window) {
        window = channel_.window();
        until = Clock::now() + options_.timeout;
      }
      if (Clock::now() >= until) {
        return make_error(Exit::kTimeout, connection_.endpoint().display() +
                                              ": server did not answer the channel close (--timeout)" +
                                              pending_text());
      }
      GAME_TRY(wait(-1, std::min(until, stop_deadline_)));
    }
    trace_.step("channel closed");
    return {};
  }

  // Reads and handles every response available now. False once the server sent EOF or closed.
  Result<bool> read_responses() {
    inbox_.clear();
    auto open = channel_.read_available(inbox_);
    if (!open) return open;
    if (!inbox_.empty()) {
      last_progress_ = Clock::now();
      reader_.feed(inbox_.data(), inbox_.size());
      for (;;) {
        auto response = reader_.next();
        if (!response) return std::move(response).error();
        if (!*response) break;
        GAME_TRY(handle(**response));
      }
    }
    return *open;
  }

  Status handle(const protocol::Response& response) {
    if (in_flight_.empty()) {
      return make_error(Exit::kProtocol, "server sent more responses than requests (" +
                                             std::to_string(tally_.accepted + tally_.rejected + 1) +
                                             " responses for " + count_text(tally_.sent, "request") + ")");
    }
    if (!acknowledging_) {
      acknowledging_ = true;
      trace_.step("server acknowledges requests: coalescing writes");
    }
    const std::uint64_t line = in_flight_.pop();
    if (response.accepted) {
      ++tally_.accepted;
      observer_.on_outcome(line, Outcome::kAccepted, {});
    } else {
      ++tally_.rejected;
      observer_.on_outcome(line, Outcome::kRejected, response.reason);
    }
    return {};
  }

  // Writes whatever the window allows. True if anything was written or taken from the source.
  Result<bool> write_ready() {
    bool progress = false;
    for (int round = 0; round < kWritesPerRound; ++round) {
      auto fetched = fetch();
      if (!fetched) return std::move(fetched).error();
      progress |= *fetched;
      if (!have_next_) break;
      const std::size_t window = channel_.window();
      // A request never straddles two data messages: the original server decodes each
      // message as exactly one Request, so wait for window rather than let libssh split it.
      if (next_.pdu.size() > window) break;
      if (acknowledging_) {
        // The server reads a byte stream: pack as many requests as fit into one message.
        const std::size_t limit = std::min(window, kMaxChunk);
        chunk_.clear();
        while (have_next_ && chunk_.size() + next_.pdu.size() <= limit) {
          chunk_ += next_.pdu;
          take_next();
          auto more = fetch();
          if (!more) return std::move(more).error();
        }
        GAME_TRY(channel_.write(chunk_));
      } else {
        GAME_TRY(channel_.write(next_.pdu));
        take_next();
      }
      progress = true;
      last_progress_ = Clock::now();
    }
    return progress;
  }

  // Pulls the next request from the source if none is pending. True if one was pulled.
  Result<bool> fetch() {
    if (have_next_ || source_done_) return false;
    auto next = source_.next(next_);
    if (!next) return std::move(next).error();
    waiting_for_source_ = *next == RequestSource::Next::kWait;
    source_done_ = *next == RequestSource::Next::kEnd;
    have_next_ = *next == RequestSource::Next::kReady;
    return have_next_;
  }

  void take_next() {
    in_flight_.push(next_.line);
    ++tally_.sent;
    have_next_ = false;
  }

  // When the wait for the server must end: only while we need something from it.
  Clock::time_point deadline() const {
    const bool need_server =
        (have_next_ && !waiting_for_source_) || (acknowledging_ && !in_flight_.empty()) || source_done_;
    return need_server ? last_progress_ + options_.timeout : Clock::time_point::max();
  }

  // Stop requests so far (signals, closed output); 0 without a StopRequests.
  int stop_requests() { return options_.stop != nullptr ? options_.stop->poll() : 0; }

  // The first stop request: nothing more is sent; the request read but not written is named so
  // that the report knows the first line the server has not seen. finish() then waits for the
  // results in flight until stop_deadline_.
  Status begin_stop() {
    trace_.step(options_.stop->reason()->message + ": sending stopped");
    stop_deadline_ = Clock::now() + std::min(options_.stop_wait, options_.timeout);
    auto fetched = fetch();
    if (!fetched) return std::move(fetched).error();
    source_done_ = true;
    if (have_next_) {
      have_next_ = false;
      observer_.on_outcome(next_.line, Outcome::kNotDelivered, {});
    }
    return {};
  }

  // At every step: the first stop request begins the stop; a second one, or the end of the short
  // wait, ends the run now.
  Status check_stop() {
    const int requests = stop_requests();
    if (requests == 0) return {};
    if (!stopping()) GAME_TRY(begin_stop());
    if (requests >= 2 || Clock::now() >= stop_deadline_) return stopped();
    return {};
  }

  bool stopping() const { return stop_deadline_ != Clock::time_point::max(); }

  Error stopped() const {
    Error error = *options_.stop->reason();
    error.message += pending_text();
    return error;
  }

  Status wait(int source_fd, Clock::time_point until) {
    const int stop_fd = options_.stop != nullptr ? options_.stop->fd() : -1;
    pollfd fds[3] = {{connection_.fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}, {source_fd, POLLIN, 0}};
    const nfds_t count = source_fd >= 0 ? 3 : 2;  // poll ignores the negative fd of no StopRequests
    int timeout_ms = -1;
    if (until != Clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      timeout_ms = static_cast<int>(std::max<long>(left.count(), 0));
    }
    const int rc = ::poll(fds, count, timeout_ms);
    if (rc < 0 && errno != EINTR) return make_error(Exit::kIoErr, "poll failed");
    return {};
  }

  Error timed_out() const {
    const auto seconds = std::chrono::duration<double>(options_.timeout).count();
    char text[32];
    std::snprintf(text, sizeof text, "%g", seconds);
    const bool unread = have_next_ && next_.pdu.size() > channel_.window();
    const std::string what =
        unread ? "server stopped reading (no SSH window left)" : "server sent no acknowledgement";
    return make_error(Exit::kTimeout, connection_.endpoint().display() + ": " + what + " for " + text +
                                          " s (--timeout)" + pending_text());
  }

  Error closed_early() const {
    return make_error(Exit::kUnavailable, connection_.endpoint().display() +
                                              ": server closed the channel early" + pending_text());
  }

  std::string pending_text() const {
    if (in_flight_.empty()) return "";
    return "; " + count_text(in_flight_.size(), "request") + " not acknowledged";
  }

  void resolve_in_flight(Outcome outcome) {
    while (!in_flight_.empty()) {
      const std::uint64_t line = in_flight_.pop();
      ++(outcome == Outcome::kDelivered ? tally_.delivered : tally_.not_delivered);
      observer_.on_outcome(line, outcome, {});
    }
  }

  // The request taken from the source but not yet written also gets its outcome.
  void fail_in_flight() {
    resolve_in_flight(Outcome::kNotDelivered);
    if (have_next_) {  // never written: named as not delivered, but not counted as sent
      have_next_ = false;
      observer_.on_outcome(next_.line, Outcome::kNotDelivered, {});
    }
  }

  Connection& connection_;
  Channel& channel_;
  RequestSource& source_;
  Observer& observer_;
  const SessionOptions& options_;
  Trace& trace_;
  Tally& tally_;

  bool acknowledging_;
  protocol::ResponseReader reader_;
  LineQueue in_flight_;
  std::string inbox_;
  std::string chunk_;
  Outgoing next_;
  bool have_next_ = false;
  bool source_done_ = false;
  bool waiting_for_source_ = false;
  Clock::time_point last_progress_;
  Clock::time_point stop_deadline_ = Clock::time_point::max();
};

}  // namespace

void LineQueue::push(std::uint64_t line) {
  if (!runs_.empty() && runs_.back().first + runs_.back().count == line) {
    ++runs_.back().count;
  } else {
    runs_.push_back({line, 1});
  }
  ++size_;
}

std::uint64_t LineQueue::pop() {
  Run& run = runs_.front();
  const std::uint64_t line = run.first;
  ++run.first;
  if (--run.count == 0) runs_.pop_front();
  --size_;
  return line;
}

Status run_session(Connection& connection, Channel& channel, RequestSource& source, Observer& observer,
                   const SessionOptions& options, Trace& trace, Tally& tally) {
  return Pump(connection, channel, source, observer, options, trace, tally).run();
}

}  // namespace game
