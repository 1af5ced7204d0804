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
      trace.step("connected to " + endpoint->display() + " (SSH handshake done)");
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
  if (!required_.empty()) {
    bool refused = false;
    auto opened = connection.open_subsystem(v2, &refused);
    if (!opened && refused) {
      return make_error(Exit::kUnavailable, server_.name + " does not support " + required_ +
                                                ": it speaks only protocol 1 (it refused the subsystem '" +
                                                v2 + "'); nothing was changed");
    }
    if (opened) protocol_ = 2;
    return opened;
  }
  if (protocol_ == 1) return connection.open_subsystem(server_.subsystem);
  if (protocol_ == 2) return connection.open_subsystem(v2);

  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  const bool probe = server_.protocol != 1 || now - server_.protocol_checked >= kReprobeAfterSeconds;
  int found = 1;
  std::optional<SshChannel> channel;
  if (probe) {
    bool refused = false;
    auto opened = connection.open_subsystem(v2, &refused);
    if (opened) {
      found = 2;
      channel.emplace(std::move(*opened));
    } else if (!refused) {
      return std::move(opened).error();
    } else {
      trace.step("subsystem '" + v2 + "' refused: the server speaks protocol 1");
    }
  }
  if (!channel) {
    auto opened = connection.open_subsystem(server_.subsystem);
    if (!opened) return std::move(opened).error();
    channel.emplace(std::move(*opened));
  }
  protocol_ = found;
  if (probe && (found != server_.protocol || found == 1)) {
    GAME_TRY(record_protocol(account_.config.path, server_.name, found, now, timeout_));
    trace.step("recorded protocol " + std::to_string(found) + " for " + server_.name);
  }
  return std::move(*channel);
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
  trace.step("subsystem '" + server_.subsystem + (protocol_ == 2 ? "-v2" : "") + "' open (protocol " +
             std::to_string(protocol_) + ")");
  channel->own(std::move(connection));
  return std::unique_ptr<Channel>(std::make_unique<SshChannel>(std::move(*channel)));
}

}  // namespace game
