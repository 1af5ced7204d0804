// Stopping a run cleanly: SIGINT, SIGTERM and SIGHUP, or a closed standard output, become a
// request the session polls for, so that it can stop sending, wait briefly for the results in
// flight, and report exactly what the server confirmed instead of dying mid-sentence.
#pragma once

#include <optional>
#include <string>

#include "error.h"

namespace game {

// Ignores SIGPIPE for the whole process, so that writing to a closed pipe fails with EPIPE
// (reported like any other output error) instead of killing the client silently.
void ignore_sigpipe();

// Owns the signal mask and a signalfd while armed; destroying it restores both. Signals are
// blocked rather than caught so that no libssh call is ever interrupted (EINTR) mid-packet: they
// wait in the signalfd until the session's own poll loop reads them. Before arm() the default
// dispositions apply: a signal during connection or authentication ends the client at once,
// before anything has been sent.
class StopRequests {
 public:
  StopRequests() = default;
  StopRequests(const StopRequests&) = delete;
  StopRequests& operator=(const StopRequests&) = delete;
  ~StopRequests();

  Status arm();
  // Readable when a signal is waiting; -1 when not armed.
  int fd() const { return fd_; }
  // Reads the signals that arrived. The number of stop requests so far: 1 = stop sending and
  // wait briefly for outstanding results, 2 or more = stop waiting now.
  int poll();
  // A stop requested from inside the client (standard output closed); counts as one request.
  void stop(Error why);
  // Why the run stopped (exit code 129/130/143 for a signal), or nullopt if it was not asked to.
  const std::optional<Error>& reason() const { return reason_; }

 private:
  void record(Error why);
  int fd_ = -1;
  bool armed_ = false;
  int requests_ = 0;
  std::optional<Error> reason_;
};

}  // namespace game
