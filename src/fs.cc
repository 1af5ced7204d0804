#include "fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string_view>
#include <thread>

namespace game::fs {
namespace {

std::string errno_text() { return std::strerror(errno); }

Error io_error(const std::string& what, const std::string& path) {
  return make_error(Exit::kIoErr, "cannot " + what + " " + path + ": " + errno_text());
}

Status fsync_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return io_error("open directory", dir);
  if (::fsync(fd.get()) != 0) return io_error("sync directory", dir);
  return {};
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The file a write to `path` must replace: `path` itself, or the target of the symbolic link
// it is, so that a dotfile kept in a dotfiles repository stays a link to the fresh content.
std::string write_target(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return path;  // dangling: rename replaces the link
  return resolved;
}

// Reads all of `fd`; errors are `code` (a private file of ours that cannot be read is a broken
// identity: kConfig).
Result<std::optional<std::string>> read_fd(const Fd& fd, const std::string& path, std::size_t max_bytes,
                                           Exit code) {
  std::string data;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(code, "cannot read " + path + ": " + errno_text());
    if (n == 0) break;
    if (data.size() + static_cast<std::size_t>(n) > max_bytes) {
      return make_error(
          code, path + " is larger than " + std::to_string(max_bytes) + " bytes; refusing to read it");
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
  return std::optional<std::string>{std::move(data)};
}

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Fd::~Fd() { close(); }

bool Fd::close() {
  if (fd_ < 0) return true;
  return ::close(std::exchange(fd_, -1)) == 0;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void wipe(std::string& s) {
  volatile char* p = s.data();
  for (std::size_t i = 0; i < s.size(); ++i) p[i] = 0;
  s.clear();
}

Result<std::string> home_dir() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    return make_error(Exit::kConfig,
                      "HOME is not set: cannot find ~/.gameconfig (set HOME, or use --config with a "
                      "config whose key path is absolute)");
  }
  return std::string(home);
}

bool needs_home(std::string_view path) { return path == "~" || path.substr(0, 2) == "~/"; }

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

std::string base_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::optional<std::string>> read_file(const std::string& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return io_error("open", path);
  }
  return read_fd(fd, path, max_bytes, Exit::kIoErr);
}

Result<std::optional<std::string>> read_private_file(const std::string& path, const char* what,
                                                     std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return make_error(Exit::kConfig, std::string("cannot read ") + what + " " + path + ": " + errno_text());
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return io_error("stat", path);
  if ((st.st_mode & 077) != 0) {
    return make_error(Exit::kNoPerm, std::string(what) + " " + path + " is accessible by others (mode " +
                                         mode_text(st.st_mode) + "); it must be private: chmod 600 " + path);
  }
  return read_fd(fd, path, max_bytes, Exit::kConfig);
}

Status create_file_exclusive(const std::string& path, std::string_view data, mode_t mode) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return io_error("create", path);
  // fchmod: the umask may have narrowed the mode; never widen beyond `mode` either.
  const bool ok =
      ::fchmod(fd.get(), mode) == 0 && write_all(fd.get(), data) && ::fsync(fd.get()) == 0 && fd.close();
  if (!ok) {
    const int saved = errno;
    ::unlink(path.c_str());
    errno = saved;
    return io_error("write", path);
  }
  return fsync_dir(parent_dir(path));
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  const std::string target = write_target(path);
  std::random_device random;
  const std::string tmp = target + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(random());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return io_error("create", tmp);
  const bool ok =
      ::fchmod(fd.get(), mode) == 0 && write_all(fd.get(), data) && ::fsync(fd.get()) == 0 && fd.close();
  if (!ok || ::rename(tmp.c_str(), target.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    return io_error("write", target);
  }
  return fsync_dir(parent_dir(target));
}

namespace {

// `path` (absolute) without empty and "." components, so that one file has one name: the journal
// is keyed by it. ".." is kept: behind a symbolic link it is not the directory before it.
std::string without_dots(const std::string& path) {
  std::string out;
  for (std::size_t start = 0; start < path.size();) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view part = std::string_view(path).substr(start, end - start);
    if (!part.empty() && part != ".") (out += '/') += part;
    start = end + 1;
  }
  return out.empty() ? "/" : out;
}

}  // namespace

Result<std::string> absolute_path(const std::string& path) {
  // Not realpath(3): it would look at every directory above the file (outside HOME too).
  if (!path.empty() && path.front() == '/') return without_dots(path);
  char* cwd = ::getcwd(nullptr, 0);
  if (cwd == nullptr) return make_error(Exit::kIoErr, "cannot find the current directory: " + errno_text());
  std::string out(cwd);
  std::free(cwd);
  return without_dots(out + "/" + path);
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

Result<FileLock> FileLock::acquire(const std::string& path, std::chrono::milliseconds timeout) {
  GAME_TRY(make_private_dirs(parent_dir(path)));
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return io_error("open lock file", path);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return io_error("lock", path);
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(Exit::kTimeout, "another game process holds " + path + "; gave up waiting after " +
                                            std::to_string(timeout.count()) + " ms (--timeout)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return FileLock(std::move(fd));
}

}  // namespace game::fs
