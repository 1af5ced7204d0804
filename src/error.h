// Errors are values: every fallible function returns a Result that carries either its value or an
// Error (exit code + one-line message with context). main() turns the Error into an exit code.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace game {

// sysexits(3)-style exit codes; the README's exit-code table documents them for users.
enum class Exit : int {
  kOk = 0,
  kRejected = 1,       // the server answered, and rejected at least one request
  kUsage = 64,         // bad command line
  kDataErr = 65,       // bad input data: a batch line, an invalid name or score
  kNoInput = 66,       // an input file cannot be opened
  kUnavailable = 69,   // server unreachable, connection lost, subsystem refused
  kIoErr = 74,         // a local file cannot be read or written
  kTimeout = 75,       // the server did not answer in time
  kProtocol = 76,      // the server sent bytes that are not our protocol
  kNoPerm = 77,        // host key mismatch, authentication refused, unsafe file permissions
  kConfig = 78,        // the config file or the identity it names is broken
  kHangup = 129,       // stopped by SIGHUP (128 + signal number, as a shell reports it)
  kInterrupted = 130,  // stopped by SIGINT (Ctrl-C)
  kTerminated = 143,   // stopped by SIGTERM
};

struct Error {
  Exit code;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  explicit operator bool() const { return v_.index() == 0; }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}

  explicit operator bool() const { return !failed_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_{Exit::kOk, {}};
  bool failed_ = false;
};

using Status = Result<void>;

inline Error make_error(Exit code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace game

// Propagates the error of a Result-returning expression to the caller.
#define GAME_TRY(expr)                                                 \
  do {                                                                 \
    auto game_try_result_ = (expr);                                    \
    if (!game_try_result_) return std::move(game_try_result_).error(); \
  } while (0)
