// The SSH transport: one libssh session and one subsystem channel, configured so that nothing
// of the user's OpenSSH setup (~/.ssh/config, known_hosts, agent, other keys) is consulted.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "error.h"
#include "ssh_handles.h"

namespace game {

struct Endpoint {
  std::string host;
  std::uint16_t port = 9022;
  std::string display() const;  // host:port, with [] around IPv6 literals
};

// Parses HOST, HOST:PORT, [V6], [V6]:PORT; a bare V6 literal (two or more ':') has no port.
Result<Endpoint> parse_endpoint(std::string_view text, std::uint16_t default_port);

class Channel;

class Connection {
 public:
  ~Connection();
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) = delete;

  // TCP connect and SSH key exchange; no authentication yet.
  static Result<Connection> open(const Endpoint& endpoint, const std::string& user,
                                 std::chrono::milliseconds timeout);

  // The server's host key fingerprint, "SHA256:..." as OpenSSH prints it.
  Result<std::string> host_key_fingerprint() const;
  // Public-key authentication offering exactly this key and nothing else.
  Status authenticate(ssh_key private_key);
  // The same through an agent socket that holds only the player's key (see agent.h); the
  // connection takes ownership of `agent_fd`.
  Status authenticate_with_agent(int agent_fd);
  Result<Channel> open_subsystem(const std::string& subsystem);

  int fd() const;
  std::string last_error() const;
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Connection(ssh_session session, Endpoint endpoint);
  Status auth_result(int rc) const;
  int read_server_extensions();
  ssh_session session_;
  Endpoint endpoint_;
};

// A subsystem channel. Writes never wait for window: callers check window() first, because
// libssh splits a write that exceeds the window across data messages.
class Channel {
 public:
  ~Channel();
  Channel(Channel&&) noexcept;
  Channel& operator=(Channel&&) = delete;

  std::uint32_t window() const;
  Status write(std::string_view bytes);
  // Appends whatever the server has sent so far without blocking. Returns false once the
  // server has sent EOF or closed the channel and everything was read.
  Result<bool> read_available(std::string& out);
  Status send_eof();
  // Sends our CLOSE (RFC 4254 5.3). The server's answer then shows up as remote_closed().
  Status close();
  // Handles whatever the server has sent, without blocking and without reading data.
  Status process_incoming();
  // True once the server has sent EOF or CLOSE (libssh's ssh_channel_is_eof is set by both).
  bool remote_closed() const;

 private:
  friend class Connection;
  Channel(ssh_channel channel, ssh_session session);
  ssh_channel channel_;
  ssh_session session_;  // not owned: for error messages
};

}  // namespace game
