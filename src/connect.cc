#include "connect.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <random>

#include "config_store.h"
#include "hostkey.h"

namespace game {
namespace {

// The subsystem on a new channel, its answer waited for: false if the server refused it.
Result<std::optional<SshChannel>> open_and_wait(Connection& connection, const std::string& subsystem) {
  auto channel = connection.open_subsystem(subsystem);
  if (!channel) return std::move(channel).error();
  auto accepted = channel->subsystem_accepted();
  if (!accepted) return std::move(accepted).error();
  if (!*accepted) return std::optional<SshChannel>();
  return std::optional<SshChannel>(std::move(*channel));
}

Error refused(const Connection& connection, const std::string& subsystem) {
  return make_error(Exit::kUnavailable, "server " + connection.endpoint().display() +
                                            " refused the subsystem '" + subsystem + "'");
}

}  // namespace

Result<Connected> connect_any(const ServerConfig& server, const std::string& user,
                              std::chrono::milliseconds timeout, Trace& trace) {
  std::vector<std::string> addresses = server.addresses;
  if (server.shuffle) {
    std::random_device random;
    std::shuffle(addresses.begin(), addresses.end(), std::mt19937(random()));
  }
  std::optional<Error> last;
  for (const std::string& address : addresses) {
    auto endpoint = parse_endpoint(address, server.port);
    if (!endpoint) return std::move(endpoint).error();
    auto connection = Connection::open(*endpoint, user, timeout);
    if (connection) {
      trace.step("connected to " + endpoint->display() + " (SSH handshake done, " + connection->cipher() +
                 ")");
      return Connected{std::move(*connection), endpoint->display()};
    }
    trace.step(connection.error().message);
    last = std::move(connection).error();
  }
  if (addresses.size() > 1) {
    last->message = "no address of " + server.name + " answered; last: " + last->message;
  }
  return *last;
}

Status authenticate(Connection& connection, Identity& identity, Trace& trace) {
  GAME_TRY(identity.unlock());
  if (identity.agent) {
    GAME_TRY(connection.authenticate_with_agent(identity.agent->dup_client_fd()));
    trace.step("authenticated as " + identity.uuid + " (key in ssh-agent)");
  } else {
    GAME_TRY(connection.authenticate(identity.private_key.get()));
    trace.step("authenticated as " + identity.uuid);
  }
  return {};
}

Result<SshChannel> ServerConnector::open_channel(Connection& connection, Trace& trace) {
  const std::string v2 = server_.subsystem + "-v2";
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (!required_.empty()) {
    auto opened = open_and_wait(connection, v2);
    if (!opened) return std::move(opened).error();
    if (!*opened) {
      return make_error(Exit::kUnavailable, server_.name + " does not support " + required_ +
                                                ": it speaks only protocol 1 (it refused the subsystem '" +
                                                v2 + "'); nothing was changed");
    }
    protocol_ = 2;
    return std::move(**opened);
  }
  if (protocol_ == 2) return reopen_v2(connection, now, trace);
  // A recorded protocol is trusted: its data follows the request at once (one round trip less),
  // and a refusal shows up on the channel's first read, before anything counts as delivered.
  const bool recorded_v1 = server_.protocol == 1 && now - server_.protocol_checked < kReprobeAfterSeconds;
  if (server_.protocol == 2 || recorded_v1) {
    protocol_ = server_.protocol;
    return connection.open_subsystem(protocol_ == 2 ? v2 : server_.subsystem);
  }

  // First contact, or a protocol 1 record due to be checked: ask for protocol 2 and wait.
  auto v2_channel = open_and_wait(connection, v2);
  if (!v2_channel) return std::move(v2_channel).error();
  std::optional<SshChannel> opened = std::move(*v2_channel);
  const int found = opened ? 2 : 1;
  if (!opened) {
    trace.step("subsystem '" + v2 + "' refused: the server speaks protocol 1");
    auto v1_channel = open_and_wait(connection, server_.subsystem);
    if (!v1_channel) return std::move(v1_channel).error();
    if (!*v1_channel) return refused(connection, server_.subsystem);
    opened.emplace(std::move(**v1_channel));
  }
  protocol_ = found;
  if (found != server_.protocol || found == 1) {
    GAME_TRY(record_protocol(account_.config.path, server_.name, found, now, timeout_));
    trace.step("recorded protocol " + std::to_string(found) + " for " + server_.name);
  }
  return std::move(*opened);
}

// A protocol 2 session after a loss: its first channel may have been refused (a server recorded
// as protocol 2 that no longer offers it), so the answer is waited for. A refusal now is final:
// it is recorded (unless the requests exist only in protocol 2: then the record is not touched),
// and the session, which cannot change protocols, ends without a retry (76, not a loss).
Result<SshChannel> ServerConnector::reopen_v2(Connection& connection, std::int64_t now, Trace& trace) {
  const std::string v2 = server_.subsystem + "-v2";
  auto opened = open_and_wait(connection, v2);
  if (!opened) return std::move(opened).error();
  if (*opened) return std::move(**opened);
  trace.step("subsystem '" + v2 + "' refused: the server speaks protocol 1");
  const std::string refusal = "server " + connection.endpoint().display() + " refused the subsystem '" + v2 +
                              "': it no longer speaks protocol 2";
  if (!required_.empty()) return make_error(Exit::kProtocol, refusal + ", which " + required_ + " need");
  GAME_TRY(record_protocol(account_.config.path, server_.name, 1, now, timeout_));
  trace.step("recorded protocol 1 for " + server_.name);
  return make_error(Exit::kProtocol,
                    refusal + " (recorded protocol 1 for " + server_.name + "; run the command again)");
}

Result<std::unique_ptr<Channel>> ServerConnector::connect(Trace& trace) {
  // The key is made usable (read, passphrase asked) before connecting: a key that cannot sign
  // must not leave a recorded host key behind, and a passphrase typed slowly must not eat the
  // server's timeout.
  GAME_TRY(account_.identity.unlock());
  auto connected = connect_any(server_, account_.identity.uuid, timeout_, trace);
  if (!connected) return std::move(connected).error();
  Connection& connection = connected->connection;
  auto offered = connection.host_key_fingerprint();
  if (!offered) return std::move(offered).error();
  GAME_TRY(
      check_host_key(*offered, pin_, server_, account_.config.path, connected->endpoint, timeout_, trace));
  GAME_TRY(authenticate(connection, account_.identity, trace));
  auto channel = open_channel(connection, trace);
  if (!channel) return std::move(channel).error();
  trace.step("subsystem '" + server_.subsystem + (protocol_ == 2 ? "-v2" : "") + "' requested (protocol " +
             std::to_string(protocol_) + ")");
  channel->own(std::move(connection));
  return std::unique_ptr<Channel>(std::make_unique<SshChannel>(std::move(*channel)));
}

}  // namespace game
