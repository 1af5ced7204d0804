#include "hostkey.h"

#include <cstdio>

#include "config_store.h"

namespace game {

Error host_key_mismatch(const std::string& expected, const std::string& offered, const std::string& source,
                        const std::string& endpoint, const std::string& server) {
  return make_error(Exit::kNoPerm,
                    "HOST KEY MISMATCH for " + endpoint + ": expected " + expected + " (" + source +
                        "), the server offered " + offered +
                        ". Nothing was sent. Someone may be intercepting the connection, or the server's "
                        "key changed. If you know it changed, re-pin it deliberately: game trust " +
                        server);
}

std::string expected_host_key(const ServerConfig& server, const std::string& endpoint) {
  const auto node = server.node_keys.find(endpoint);
  return node != server.node_keys.end() ? node->second : server.host_key;
}

Status check_host_key(const std::string& offered, const std::string& pin, const ServerConfig& server,
                      const std::string& config_path, const std::string& endpoint,
                      std::chrono::milliseconds lock_wait, Trace& trace) {
  const std::string expected = expected_host_key(server, endpoint);
  if (!pin.empty()) {
    if (pin != offered) return host_key_mismatch(pin, offered, "--host-key", endpoint, server.name);
    trace.step("host key " + offered + " matches --host-key");
    if (!expected.empty()) return {};
  } else if (!expected.empty()) {
    if (expected != offered) return host_key_mismatch(expected, offered, config_path, endpoint, server.name);
    trace.step("host key " + offered + " matches the config");
    return {};
  }
  GAME_TRY(record_host_key(config_path, server, endpoint, offered, HostKeyRecord::kFirstUse, !pin.empty(),
                           lock_wait));
  if (pin.empty()) {
    std::fprintf(stderr, "game: trusting %s on first use: host key %s (recorded in %s)\n", endpoint.c_str(),
                 offered.c_str(), config_path.c_str());
  }
  trace.step("recorded host key " + offered);
  return {};
}

}  // namespace game
