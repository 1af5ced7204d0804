#include "signals.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace game {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

Error signal_error(int signo) {
  switch (signo) {
    case SIGINT:
      return make_error(Exit::kInterrupted, "interrupted (SIGINT)");
    case SIGTERM:
      return make_error(Exit::kTerminated, "terminated (SIGTERM)");
    default:
      return make_error(Exit::kHangup, "hung up (SIGHUP)");
  }
}

}  // namespace

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

StopRequests::~StopRequests() {
  if (!armed_) return;
  poll();  // consume what arrived, so that unblocking does not deliver it after the summary
  const sigset_t set = stop_signals();
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::close(fd_);
}

Status StopRequests::arm() {
  if (armed_) return {};
  const sigset_t set = stop_signals();
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
    return make_error(Exit::kIoErr, std::string("cannot block signals: ") + std::strerror(errno));
  }
  fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) {
    const int saved = errno;
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    return make_error(Exit::kIoErr, std::string("cannot create a signalfd: ") + std::strerror(saved));
  }
  armed_ = true;
  return {};
}

int StopRequests::poll() {
  if (!armed_) return requests_;
  signalfd_siginfo info;
  while (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    record(signal_error(static_cast<int>(info.ssi_signo)));
  }
  return requests_;
}

void StopRequests::stop(Error why) { record(std::move(why)); }

void StopRequests::record(Error why) {
  ++requests_;
  if (!reason_) reason_ = std::move(why);
}

}  // namespace game
