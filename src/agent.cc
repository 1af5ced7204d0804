#include "agent.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>

namespace game {
namespace {

// Message numbers from the SSH agent protocol (draft-miller-ssh-agent).
constexpr std::uint8_t kFailure = 5;
constexpr std::uint8_t kRequestIdentities = 11;
constexpr std::uint8_t kIdentitiesAnswer = 12;
constexpr std::uint8_t kSignRequest = 13;
constexpr std::size_t kMaxMessage = 256 * 1024;

bool read_exact(int fd, char* buf, std::size_t n) {
  while (n > 0) {
    const ssize_t got = ::read(fd, buf, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buf += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

bool write_exact(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::uint32_t get_u32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
}

void put_u32(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

void put_string(std::string& out, const std::string& s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

// One framed message (type byte + payload), without its length prefix.
std::optional<std::string> read_message(int fd) {
  char header[4];
  if (!read_exact(fd, header, 4)) return std::nullopt;
  const std::uint32_t len = get_u32(header);
  if (len == 0 || len > kMaxMessage) return std::nullopt;
  std::string body(len, '\0');
  if (!read_exact(fd, body.data(), len)) return std::nullopt;
  return body;
}

bool write_message(int fd, const std::string& body) {
  std::string framed;
  put_u32(framed, static_cast<std::uint32_t>(body.size()));
  return write_exact(fd, framed + body);
}

// Reads an SSH string at `pos` of `msg`, advancing pos.
std::optional<std::string> get_string(const std::string& msg, std::size_t& pos) {
  if (msg.size() - pos < 4) return std::nullopt;
  const std::uint32_t len = get_u32(msg.data() + pos);
  pos += 4;
  if (msg.size() - pos < len) return std::nullopt;
  std::string s = msg.substr(pos, len);
  pos += len;
  return s;
}

bool agent_holds(int fd, const std::string& blob) {
  if (!write_message(fd, std::string(1, static_cast<char>(kRequestIdentities)))) return false;
  const auto reply = read_message(fd);
  if (!reply || static_cast<std::uint8_t>((*reply)[0]) != kIdentitiesAnswer || reply->size() < 5)
    return false;
  std::size_t pos = 5;
  for (std::uint32_t n = get_u32(reply->data() + 1); n > 0; --n) {
    const auto key = get_string(*reply, pos);
    const auto comment = get_string(*reply, pos);
    if (!key || !comment) return false;
    if (*key == blob) return true;
  }
  return false;
}

int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::unique_ptr<AgentKey> AgentKey::find(const std::string& socket_path, const std::string& public_blob) {
  const int fd = connect_unix(socket_path);
  if (fd < 0) return nullptr;
  if (!agent_holds(fd, public_blob)) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<AgentKey>(new AgentKey(fd, public_blob));
}

AgentKey::AgentKey(int agent_fd, std::string public_blob)
    : agent_fd_(agent_fd), served_fd_(-1), client_fd_(-1), public_blob_(std::move(public_blob)) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
    served_fd_ = pair[0];
    client_fd_ = pair[1];
    thread_ = std::thread([this] { serve(); });
  }
}

AgentKey::~AgentKey() {
  if (served_fd_ >= 0) ::shutdown(served_fd_, SHUT_RDWR);  // wakes the thread
  if (thread_.joinable()) thread_.join();
  for (const int fd : {agent_fd_, served_fd_, client_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

int AgentKey::dup_client_fd() const { return client_fd_ < 0 ? -1 : ::dup(client_fd_); }

void AgentKey::serve() {
  while (const auto request = read_message(served_fd_)) {
    const auto type = static_cast<std::uint8_t>((*request)[0]);
    std::string reply(1, static_cast<char>(kFailure));
    if (type == kRequestIdentities) {
      reply.assign(1, static_cast<char>(kIdentitiesAnswer));
      put_u32(reply, 1);
      put_string(reply, public_blob_);
      put_string(reply, "game identity");
    } else if (type == kSignRequest) {
      std::size_t pos = 1;
      const auto key = get_string(*request, pos);
      if (key && *key == public_blob_ && write_message(agent_fd_, *request)) {
        if (auto signed_reply = read_message(agent_fd_)) reply = std::move(*signed_reply);
      }
    }
    if (!write_message(served_fd_, reply)) break;
  }
}

}  // namespace game
