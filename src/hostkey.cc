#include "hostkey.h"

#include <cstdio>

#include "identity.h"

namespace game {
namespace {

Error host_key_mismatch(const std::string& expected, const std::string& offered, const std::string& source,
                        const std::string& endpoint, const std::string& server) {
  return make_error(Exit::kNoPerm,
                    "HOST KEY MISMATCH for " + endpoint + ": expected " + expected + " (" + source +
                        "), the server offered " + offered +
                        ". Nothing was sent. Someone may be intercepting the connection, or the server's "
                        "key changed. If you know it changed, re-pin it deliberately: game trust " +
                        server);
}

// Where a key for `endpoint` is recorded: the shared host_key, or the node's entry.
std::vector<std::string> record_table(const ServerConfig& server, bool per_node) {
  if (per_node) return {"servers", server.name, "host_keys"};
  return {"servers", server.name};
}

// The edit that stores `offered` for `server`, creating its table for a server that was given
// as --server HOST[:PORT]. With `only_if_unknown`, a key recorded meanwhile by another process
// wins (and must match).
ConfigEdit record_edit(const ServerConfig& server, const std::string& offered, const std::string& path,
                       const std::string& endpoint, bool only_if_unknown) {
  return [=](const std::string& text) -> Result<std::string> {
    auto current = parse_config(text, path);
    if (!current) return std::move(current).error();
    std::string out = text;
    const ServerConfig* known = current->find_server(server.name);
    if (only_if_unknown && known != nullptr) {
      const std::string recorded = expected_host_key(*known, endpoint);
      if (!recorded.empty()) {
        if (recorded != offered) return host_key_mismatch(recorded, offered, path, endpoint, server.name);
        return out;
      }
    }
    if (known == nullptr) {
      const std::vector<std::pair<std::string, std::string>> values = {
          {"host", toml_string(server.addresses.front())}, {"port", std::to_string(server.port)}};
      for (const auto& [key, value] : values) {
        auto edited = set_table_value(out, path, {"servers", server.name}, key, value);
        if (!edited) return std::move(edited).error();
        out = std::move(*edited);
      }
    }
    const bool per_node = server.addresses.size() > 1 && (known == nullptr || known->host_key.empty());
    auto edited = set_table_value(out, path, record_table(server, per_node), per_node ? endpoint : "host_key",
                                  toml_string(offered));
    if (!edited) return std::move(edited).error();
    out = std::move(*edited);
    if (current->default_server.empty()) {
      // The first server whose key is recorded becomes the default, so `game score 5` just works
      // next time. (With --host-key nothing is recorded, and the default stays unset.)
      auto with_default = set_top_level_value(out, path, "default_server", toml_string(server.name));
      if (!with_default) return std::move(with_default).error();
      out = std::move(*with_default);
    }
    return out;
  };
}

}  // namespace

std::string expected_host_key(const ServerConfig& server, const std::string& endpoint) {
  if (!server.host_key.empty()) return server.host_key;
  const auto node = server.node_keys.find(endpoint);
  return node == server.node_keys.end() ? std::string() : node->second;
}

Status check_host_key(const std::string& offered, const std::string& pin, const ServerConfig& server,
                      const std::string& config_path, const std::string& endpoint, Trace& trace) {
  if (!pin.empty()) {
    if (pin != offered) return host_key_mismatch(pin, offered, "--host-key", endpoint, server.name);
    trace.step("host key " + offered + " matches --host-key");
    return {};
  }
  if (const std::string expected = expected_host_key(server, endpoint); !expected.empty()) {
    if (expected != offered) return host_key_mismatch(expected, offered, config_path, endpoint, server.name);
    trace.step("host key " + offered + " matches the config");
    return {};
  }
  auto updated = update_config(config_path, record_edit(server, offered, config_path, endpoint, true));
  if (!updated) return std::move(updated).error();
  std::fprintf(stderr, "game: trusting %s on first use: host key %s (recorded in %s)\n", endpoint.c_str(),
               offered.c_str(), config_path.c_str());
  trace.step("recorded host key " + offered);
  return {};
}

Status pin_host_key(const std::string& offered, const ServerConfig& server, const std::string& config_path,
                    const std::string& endpoint) {
  auto updated = update_config(config_path, record_edit(server, offered, config_path, endpoint, false));
  if (!updated) return std::move(updated).error();
  return {};
}

}  // namespace game
