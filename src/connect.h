// Reaching a server entry: its addresses in turn, the host key check, authentication, and the
// subsystem, protocol 2 (NAME-v2) first unless the config records that the server speaks only
// protocol 1 (docs/protocol.md: "Finding out what a server speaks").
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "error.h"
#include "identity.h"
#include "session.h"
#include "trace.h"
#include "transport.h"

namespace game {

// A server recorded as protocol 1 is asked for protocol 2 again after this long.
constexpr std::int64_t kReprobeAfterSeconds = 7 * 24 * 3600;

struct Connected {
  Connection connection;
  std::string endpoint;  // host:port of the node that answered
};

// Tries the server's addresses in order (or shuffled) and returns the first that completes the
// SSH handshake: a node that refuses or does not answer within the timeout is skipped.
Result<Connected> connect_any(const ServerConfig& server, const std::string& user,
                              std::chrono::milliseconds timeout, Trace& trace);

Status authenticate(Connection& connection, Identity& identity, Trace& trace);

// Channels for one unit of work. The first connect() finds out the protocol (and records it);
// later ones, after a loss, open the same subsystem again on whichever node answers.
class ServerConnector : public Connector {
 public:
  ServerConnector(ServerConfig server, Account& account, std::string host_key_pin,
                  std::chrono::milliseconds timeout)
      : server_(std::move(server)), account_(account), pin_(std::move(host_key_pin)), timeout_(timeout) {}

  Result<std::unique_ptr<Channel>> connect(Trace& trace) override;
  int protocol() const { return protocol_; }
  // For requests only protocol 2 has (`what`, e.g. "account keys"): NAME-v2 or an error that
  // says the server lacks `what`; the config's protocol record is neither read nor written.
  void require_protocol2(std::string what) { required_ = std::move(what); }

 private:
  Result<SshChannel> open_channel(Connection& connection, Trace& trace);
  Result<SshChannel> reopen_v2(Connection& connection, std::int64_t now, Trace& trace);
  ServerConfig server_;
  Account& account_;
  std::string pin_;
  std::chrono::milliseconds timeout_;
  int protocol_ = 0;  // 0 until the first connect
  std::string required_;
};

}  // namespace game
