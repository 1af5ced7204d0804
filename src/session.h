// One unit of work: streams requests from a source over a channel, pipelined, reading results
// while writing, and reports every request's outcome exactly once. Protocol 2 (docs/protocol.md)
// numbers each request (seq = its line) on a stream, so after a lost connection the pump
// reconnects and resends whatever is not yet acknowledged; protocol 1 cannot, and fails.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "error.h"
#include "protocol.h"
#include "signals.h"
#include "trace.h"
#include "transport.h"

namespace game {

// A request and where it came from (input line, or 1 for a one-shot command). Lines increase
// strictly along a unit of work: in protocol 2 the line is the request's seq.
struct Outgoing {
  protocol::Submission request;
  std::uint64_t line = 0;
};

// A `score N` request and its line, as a batch file hands out nearly all of its requests.
struct PlainScore {
  std::uint64_t line;
  std::int64_t value;
};

class RequestSource {
 public:
  enum class Next { kReady, kWait, kEnd };
  virtual ~RequestSource() = default;
  // Fills `out` with the next request without blocking: kWait means "none yet, poll wait_fd()".
  virtual Result<Next> next(Outgoing& out) = 0;
  // Up to `max` of the next requests into `out` if they are plain scores, without blocking: how
  // many; 0 when the next request is anything else (or none is ready), for next() to hand out.
  // A shortcut for the bulk of a large batch, where the call, the variant and the bookkeeping of
  // next() per request were a sixth to a quarter of its instructions (docs/PERFORMANCE.md).
  virtual std::size_t next_scores(PlainScore* /*out*/, std::size_t /*max*/) { return 0; }
  virtual int wait_fd() const { return -1; }
};

enum class Outcome {
  kAccepted,      // acknowledged by the server: applied now
  kRejected,      // the server refused it, with a reason
  kDuplicate,     // protocol 2: the server had already applied it (an earlier send); not again
  kDelivered,     // written and the session ended cleanly, but the server does not acknowledge
  kNotDelivered,  // the session failed before the server acknowledged it
};

struct Tally {
  std::uint64_t sent = 0;  // requests written at least once (a resend is not counted again)
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t duplicate = 0;
  std::uint64_t delivered = 0;
  std::uint64_t not_delivered = 0;
  std::uint64_t reconnections = 0;
};

class Observer {
 public:
  virtual ~Observer() = default;
  // The request of `line` was written to the server for the first time.
  virtual void on_sent(std::uint64_t /*line*/) {}
  virtual void on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) = 0;
  // Lines first .. first + count - 1, each a request, all accepted: what a large batch hears
  // nearly always, told at once (an observer that keeps counts need not loop).
  virtual void on_accepted(std::uint64_t first, std::uint64_t count);
  // The answer to a listKeys request (its outcome is kAccepted).
  virtual void on_keys(std::uint64_t /*line*/, const std::vector<protocol::KeyInfo>& /*keys*/) {}
};

struct SessionOptions {
  std::chrono::milliseconds timeout{10000};  // longest wait for the server to make progress
  // After our EOF, how long a server that has not acknowledged anything gets to acknowledge or
  // close before we close the channel ourselves (acks = "auto"); see docs/protocol.md.
  std::chrono::milliseconds ack_grace{2000};
  AckMode acks = AckMode::kAuto;
  // Polled between steps: once a stop is requested nothing more is sent, and the results in
  // flight get at most `stop_wait` (and never more than `timeout`); a second request ends the
  // wait at once. Every request still unresolved then is reported kNotDelivered.
  StopRequests* stop = nullptr;
  std::chrono::milliseconds stop_wait{2000};
  int protocol = 1;             // what the channel speaks: 1 or 2
  protocol::StreamId stream{};  // protocol 2: the unit of work's stream
  // Protocol 2: after a lost connection, how long to keep trying to reconnect (docs/batch.md).
  std::chrono::milliseconds reconnect_for{30000};
};

// New channels to the same server for one unit of work, speaking the same protocol.
class Connector {
 public:
  virtual ~Connector() = default;
  virtual Result<std::unique_ptr<Channel>> connect(Trace& trace) = 0;
};

// 16 bytes from the kernel's CSPRNG (getrandom(2)): a new stream for a new unit of work.
Result<protocol::StreamId> new_stream_id();

// Line numbers of requests in flight, in order; stored as runs so that a million consecutive
// lines take a few bytes, not megabytes.
class LineQueue {
 public:
  struct Run {
    std::uint64_t first;
    std::uint64_t count;
  };
  void push(std::uint64_t line);
  std::uint64_t pop();
  // Takes up to `max` (> 0) consecutive lines off the front, at least one.
  Run pop_run(std::uint64_t max);
  std::uint64_t front() const { return runs_.front().first; }
  bool empty() const { return runs_.empty(); }
  std::uint64_t size() const { return size_; }

 private:
  std::deque<Run> runs_;
  std::uint64_t size_ = 0;
};

// Runs the unit of work to its end on `channel`, and in protocol 2 on channels from `reconnect`
// after a loss. Every request taken from `source` gets exactly one outcome; on an error, the
// requests not yet answered are reported kNotDelivered before the error is returned.
Status run_session(std::unique_ptr<Channel> channel, Connector& reconnect, RequestSource& source,
                   Observer& observer, const SessionOptions& options, Trace& trace, Tally& tally);

}  // namespace game
