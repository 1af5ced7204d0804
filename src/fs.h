// File-system operations for the player's identity files: these never leave a half-written or
// world-readable file behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "error.h"

namespace game::fs {

// $HOME; an error when unset (no password-database look-up: the binary is static).
Result<std::string> home_dir();
// "~/x" -> "$HOME/x"; other paths unchanged.
std::string expand_home(std::string_view path, const std::string& home);
// "$HOME/x" -> "~/x", so that a config stays valid when its home directory moves.
std::string abbreviate_home(const std::string& path, const std::string& home);
std::string parent_dir(const std::string& path);
// `path` made absolute against the current directory (symbolic links and .. are kept).
Result<std::string> absolute_path(const std::string& path);

// The file's contents, or nullopt when it does not exist.
Result<std::optional<std::string>> read_file(const std::string& path);
// Replaces `path` atomically: temporary file in the same directory, fsync, rename, fsync dir.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode);
// Creates `path`, failing if it exists; the mode is set at creation, never widened by umask races.
Status create_file_exclusive(const std::string& path, std::string_view data, mode_t mode);
// Unlinks `path` (absent is fine) and syncs its directory, so that the removal survives a crash.
Status remove_file(const std::string& path);
Status make_private_dirs(const std::string& path);
// Refuses a file that group or others can read or write, like OpenSSH does for private keys.
Status check_private(const std::string& path, const char* what);
bool exists(const std::string& path);

// An exclusive advisory lock (flock) on `path`, created 0600 if needed; released on destruction.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::string& path, std::chrono::milliseconds timeout);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace game::fs
