#include "passphrase.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>

#include "fs.h"

namespace game {
namespace {

// The signals that must not leave the terminal without echo (OpenSSH's list).
constexpr std::array kSignals = {SIGALRM, SIGHUP,  SIGINT,  SIGPIPE, SIGQUIT,
                                 SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};

std::atomic<int> caught{0};

void note_signal(int sig) { caught = sig; }

// While alive: note_signal handles kSignals, and they are blocked except inside wait_readable's
// ppoll(2), so that one arriving just before the wait cannot be missed (a plain read(2) after a
// check of `caught` would then block). Puts the previous handlers and mask back on destruction.
class SignalGuard {
 public:
  SignalGuard() {
    struct sigaction action {};
    action.sa_handler = note_signal;
    sigemptyset(&action.sa_mask);
    sigset_t blocked;
    sigemptyset(&blocked);
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      sigaction(kSignals[i], &action, &saved_[i]);
      sigaddset(&blocked, kSignals[i]);
    }
    pthread_sigmask(SIG_BLOCK, &blocked, &unblocked_);
  }
  ~SignalGuard() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &saved_[i], nullptr);
    pthread_sigmask(SIG_SETMASK, &unblocked_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

  // Waits until `fd` is readable; false when a signal came first (or the wait failed).
  bool wait_readable(int fd) const {
    pollfd p{fd, POLLIN, 0};
    return caught == 0 && ::ppoll(&p, 1, nullptr, &unblocked_) > 0 && caught == 0;
  }

 private:
  std::array<struct sigaction, kSignals.size()> saved_{};
  sigset_t unblocked_{};
};

// Turns echo off on `tty` while alive.
class EchoOff {
 public:
  explicit EchoOff(int tty) : tty_(tty), active_(::tcgetattr(tty, &saved_) == 0) {
    if (!active_) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
    // Echo off before the prompt: what is typed as soon as it shows is neither echoed nor lost.
    while (::tcsetattr(tty_, TCSAFLUSH, &quiet) != 0 && errno == EINTR) {
    }
  }
  ~EchoOff() {
    if (active_) {
      while (::tcsetattr(tty_, TCSAFLUSH, &saved_) != 0 && errno == EINTR) {
      }
    }
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int tty_;
  termios saved_{};
  bool active_;
};

// Reads one line from `tty` up to a newline; stops early when a signal was caught.
std::optional<std::string> read_line(int tty, const SignalGuard& signals) {
  std::string line;
  for (;;) {
    char c;
    if (!signals.wait_readable(tty) || ::read(tty, &c, 1) != 1) break;
    if (c == '\n' || c == '\r') return line;
    line += c;
  }
  fs::wipe(line);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> read_passphrase(const std::string& prompt) {
  fs::Fd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!tty) return std::nullopt;
  caught = 0;
  std::optional<std::string> line;
  {
    const SignalGuard signals;
    const EchoOff quiet(tty.get());
    (void)fs::write_all(tty.get(), prompt);
    line = read_line(tty.get(), signals);
    (void)fs::write_all(tty.get(), "\n");
  }
  // The terminal and the handlers are back as they were: now let the signal do what it does.
  if (const int sig = caught.exchange(0); sig != 0) ::kill(::getpid(), sig);
  return line;
}

}  // namespace game
