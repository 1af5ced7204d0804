// The SSH transport: one libssh session and one subsystem channel, configured so that nothing
// of the user's OpenSSH setup (~/.ssh/config, known_hosts, agent, other keys) is consulted.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
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

class SshChannel;

class Connection {
 public:
  ~Connection();
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) = delete;

  // Name look-up, TCP connect and SSH key exchange, all within `timeout`; no authentication
  // yet. libssh is given numeric addresses (each one the name has, in turn); messages keep the
  // name.
  static Result<Connection> open(const Endpoint& endpoint, const std::string& user,
                                 std::chrono::milliseconds timeout);

  // The server's host key fingerprint, "SHA256:..." as OpenSSH prints it.
  Result<std::string> host_key_fingerprint() const;
  // Public-key authentication offering exactly this key and nothing else.
  Status authenticate(ssh_key private_key);
  // The same through an agent socket that holds only the player's key (see agent.h); the
  // connection takes ownership of `agent_fd`.
  Status authenticate_with_agent(int agent_fd);
  // Opens a session channel and requests `subsystem` on it without waiting for the answer, so
  // that the first data can follow the request in the same round trip. The answer is taken by
  // SshChannel::subsystem_accepted() or, failing that, by the channel's reads.
  Result<SshChannel> open_subsystem(const std::string& subsystem);

  int fd() const;
  std::string last_error() const;
  // The cipher negotiated for what we send, e.g. "aes256-gcm@openssh.com".
  std::string cipher() const;
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Connection(ssh_session session, Endpoint endpoint);
  static Result<Connection> open_address(const std::string& address, const Endpoint& endpoint,
                                         const std::string& user, std::chrono::milliseconds timeout);
  Status auth_result(int rc, const std::string& key) const;
  int read_server_extensions();
  ssh_session session_;
  Endpoint endpoint_;
};

// What the session pump needs of a subsystem channel: the seam between the pump (session.cc)
// and SSH. SshChannel below is the real one; tests/unit/session_test.cc has an in-memory fake.
// Writes never wait for window: callers check window() first, because libssh splits a write
// that exceeds the window across data messages.
class Channel {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~Channel() = default;

  virtual std::uint32_t window() const = 0;
  virtual Status write(std::string_view bytes) = 0;
  // Appends whatever the server has sent so far without blocking. Returns false once the
  // server has sent EOF or closed the channel and everything was read. On an error, the bytes
  // that arrived before it are still appended to `out`: the caller handles them first.
  virtual Result<bool> read_available(std::string& out) = 0;
  virtual Status send_eof() = 0;
  // Sends our CLOSE (RFC 4254 5.3). The server's answer then shows up as remote_closed().
  virtual Status close() = 0;
  // True once the server has sent EOF or CLOSE.
  virtual bool remote_closed() const = 0;
  // Blocks until the server may have sent something, one of `fds` is readable (negative ones are
  // ignored), or `until`.
  virtual Status wait(std::initializer_list<int> fds, Clock::time_point until) = 0;
  // host:port of the node at the other end, for messages.
  virtual std::string peer() const = 0;
};

class SshChannel final : public Channel {
 public:
  ~SshChannel() override;
  SshChannel(SshChannel&&) noexcept;
  SshChannel& operator=(SshChannel&&) = delete;

  // Keeps `connection` (the one this channel was opened on) alive as long as the channel.
  void own(Connection&& connection);
  // Waits (at most the connection's timeout) for the answer to the subsystem request: true if
  // the server started the subsystem, false if it refused it (the connection stays usable).
  Result<bool> subsystem_accepted();

  std::uint32_t window() const override;
  Status write(std::string_view bytes) override;
  Result<bool> read_available(std::string& out) override;
  Status send_eof() override;
  Status close() override;
  bool remote_closed() const override;
  Status wait(std::initializer_list<int> fds, Clock::time_point until) override;
  std::string peer() const override { return peer_; }

 private:
  friend class Connection;
  SshChannel(ssh_channel channel, ssh_session session, std::string peer, std::string subsystem);
  enum class Reply { kPending, kAccepted, kRefused };
  Status poll_subsystem_reply(bool block);
  Status check_subsystem_reply();
  Result<bool> read_data(std::string& out);
  ssh_channel channel_;
  ssh_session session_;  // not owned (unless own() was called): for polling and error messages
  std::string peer_;
  // The subsystem requested and the server's answer so far. Data written before the answer is
  // lost if the server refuses: a refusal arrives before any data of the subsystem (the server
  // answers requests in order), so reads look for it.
  std::string subsystem_;
  Reply reply_ = Reply::kPending;
  // read_data() stopped at its bound with data still available: wait() must not sleep on the
  // socket, which may have nothing more to say.
  bool more_available_ = false;
  std::unique_ptr<Connection> connection_;  // declared last: freed after the channel
};

}  // namespace game
