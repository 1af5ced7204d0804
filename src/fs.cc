#include "fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <utility>

namespace game::fs {
namespace {

std::string errno_text() { return std::strerror(errno); }

Error io_error(const std::string& what, const std::string& path) {
  return make_error(Exit::kIoErr, "cannot " + what + " " + path + ": " + errno_text());
}

// Writes all of `data`, retrying short writes and EINTR.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return io_error("sync directory", dir);
  return {};
}

}  // namespace

Result<std::string> home_dir() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    return make_error(Exit::kConfig, "HOME is not set: cannot find ~/.gameconfig (set HOME or use --config)");
  }
  return std::string(home);
}

std::string expand_home(std::string_view path, const std::string& home) {
  if (path == "~") return home;
  if (path.substr(0, 2) == "~/") return home + std::string(path.substr(1));
  return std::string(path);
}

std::string abbreviate_home(const std::string& path, const std::string& home) {
  if (!home.empty() && path.size() > home.size() && path.compare(0, home.size(), home) == 0 &&
      path[home.size()] == '/') {
    return "~" + path.substr(home.size());
  }
  return path;
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::optional<std::string>> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return io_error("open", path);
  }
  std::string data;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return io_error("read", path);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>{std::move(data)};
}

Status create_file_exclusive(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return io_error("create", path);
  // fchmod: the umask may have narrowed the mode; never widen beyond `mode` either.
  const bool ok = ::fchmod(fd, mode) == 0 && write_all(fd, data) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    errno = saved;
    return io_error("write", path);
  }
  return fsync_dir(parent_dir(path));
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::random_device random;
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(random());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return io_error("create", tmp);
  const bool ok = ::fchmod(fd, mode) == 0 && write_all(fd, data) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = ok ? errno : saved;
    ::unlink(tmp.c_str());
    errno = err;
    return io_error("write", path);
  }
  return fsync_dir(parent_dir(path));
}

Result<std::string> absolute_path(const std::string& path) {
  // Not realpath(3): it would look at every directory above the file (outside HOME too).
  if (!path.empty() && path.front() == '/') return path;
  char* cwd = ::getcwd(nullptr, 0);
  if (cwd == nullptr) return make_error(Exit::kIoErr, "cannot find the current directory: " + errno_text());
  std::string out(cwd);
  std::free(cwd);
  return out + "/" + path;
}

Status remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return io_error("remove", path);
  }
  return fsync_dir(parent_dir(path));
}

Status make_private_dirs(const std::string& path) {
  if (path.empty() || path == "/" || path == ".") return {};
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return make_error(Exit::kIoErr, path + " exists and is not a directory");
  }
  GAME_TRY(make_private_dirs(parent_dir(path)));
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return io_error("create directory", path);
  return {};
}

Status check_private(const std::string& path, const char* what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return io_error("stat", path);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(Exit::kNoPerm, std::string(what) + " " + path + " is accessible by others (mode " +
                                         mode + "); it must be private: chmod 600 " + path);
  }
  return {};
}

Result<FileLock> FileLock::acquire(const std::string& path, std::chrono::milliseconds timeout) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("open lock file", path);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const Error error = io_error("lock", path);
      ::close(fd);
      return error;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      return make_error(Exit::kTimeout, "another game process holds " + path + "; gave up waiting");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace game::fs
