// One subsystem session: streams requests from a source over a channel, pipelined, reading
// acknowledgements while writing, and reports every request's outcome exactly once.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

#include "config.h"
#include "error.h"
#include "signals.h"
#include "trace.h"
#include "transport.h"

namespace game {

// An encoded request and where it came from (input line, or position on the command line).
struct Outgoing {
  std::string pdu;
  std::uint64_t line = 0;
};

class RequestSource {
 public:
  enum class Next { kReady, kWait, kEnd };
  virtual ~RequestSource() = default;
  // Fills `out` with the next request without blocking: kWait means "none yet, poll wait_fd()".
  virtual Result<Next> next(Outgoing& out) = 0;
  virtual int wait_fd() const { return -1; }
};

enum class Outcome {
  kAccepted,      // acknowledged by the server
  kRejected,      // the server refused it, with a reason
  kDelivered,     // written and the session ended cleanly, but the server does not acknowledge
  kNotDelivered,  // the session failed before the server acknowledged it
};

struct Tally {
  std::uint64_t sent = 0;
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t delivered = 0;
  std::uint64_t not_delivered = 0;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) = 0;
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
};

// Line numbers of requests in flight, in order; stored as runs so that a million consecutive
// lines take a few bytes, not megabytes.
class LineQueue {
 public:
  void push(std::uint64_t line);
  std::uint64_t pop();
  std::uint64_t front() const { return runs_.front().first; }
  bool empty() const { return runs_.empty(); }
  std::uint64_t size() const { return size_; }

 private:
  struct Run {
    std::uint64_t first;
    std::uint64_t count;
  };
  std::deque<Run> runs_;
  std::uint64_t size_ = 0;
};

// Runs the session to its end. Every request taken from `source` gets exactly one outcome; on an
// error, the requests in flight are reported kNotDelivered before the error is returned.
Status run_session(Connection& connection, Channel& channel, RequestSource& source, Observer& observer,
                   const SessionOptions& options, Trace& trace, Tally& tally);

}  // namespace game
