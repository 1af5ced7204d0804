// File-system operations for the player's identity files: these never leave a half-written or
// world-readable file behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "error.h"

namespace game::fs {

// Owns one file descriptor: closed exactly once, on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // Closes now and reports whether close(2) succeeded (a write error may surface only here).
  bool close();

 private:
  int fd_ = -1;
};

// $HOME; an error when unset (no password-database look-up: the binary is static).
Result<std::string> home_dir();
// "~/x" -> "$HOME/x"; other paths unchanged. `home` may be empty only for paths without "~".
std::string expand_home(std::string_view path, const std::string& home);
// Whether `path` needs $HOME to be expanded.
bool needs_home(std::string_view path);
// "$HOME/x" -> "~/x", so that a config stays valid when its home directory moves.
std::string abbreviate_home(const std::string& path, const std::string& home);
std::string parent_dir(const std::string& path);
// `path` made absolute against the current directory, without "." or empty components (symbolic
// links and .. are kept).
Result<std::string> absolute_path(const std::string& path);
std::string base_name(const std::string& path);

// The file's contents, or nullopt when it does not exist. A file larger than `max_bytes` is an
// error (kIoErr unless `too_big` says otherwise) read no further than the limit.
Result<std::optional<std::string>> read_file(const std::string& path, std::size_t max_bytes = std::size_t(1)
                                                                                              << 30);
// Like read_file, but refuses a file that group or others can read or write (checked on the
// opened descriptor, as OpenSSH does, so that the file checked is the file read).
Result<std::optional<std::string>> read_private_file(const std::string& path, const char* what,
                                                     std::size_t max_bytes);
// Replaces `path` atomically: temporary file in the same directory, fsync, rename, fsync dir.
// A symbolic link is written through: its target is replaced (beside the target), the link kept.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode);
// Creates `path`, failing if it exists; the mode is set at creation, never widened by umask races.
Status create_file_exclusive(const std::string& path, std::string_view data, mode_t mode);
// Unlinks `path` (absent is fine) and syncs its directory, so that the removal survives a crash.
Status remove_file(const std::string& path);
Status make_private_dirs(const std::string& path);
bool exists(const std::string& path);
// Writes all of `data` to `fd`, retrying short writes and EINTR; false with errno set on failure.
bool write_all(int fd, std::string_view data);

// Overwrites `s` with zeros before it is released (key text, passphrases).
void wipe(std::string& s);

// An exclusive advisory lock (flock) on `path`, created 0600 if needed; released on destruction.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::string& path, std::chrono::milliseconds timeout);

 private:
  explicit FileLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // closing releases the flock
};

}  // namespace game::fs
