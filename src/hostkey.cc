#include "hostkey.h"

#include <cstdio>

#include "identity.h"

namespace game {
namespace {

Error host_key_mismatch(const std::string& expected, const std::string& offered, const std::string& source,
               const std::string& endpoint) {
  return make_error(Exit::kNoPerm,
                    "HOST KEY MISMATCH for " + endpoint + ": expected " + expected + " (" + source +
                        "), server offered " + offered +
                        ". Nothing was sent. If the server's key changed on purpose, update host_key "
                        "in the config; otherwise someone may be intercepting the connection.");
}

// The edit that records `offered` for `server`, re-checking under the lock in case another
// process recorded a key meanwhile.
ConfigEdit record_edit(const ServerConfig& server, const std::string& offered, const std::string& path,
                       const std::string& endpoint) {
  return [=](const std::string& text) -> Result<std::string> {
    auto current = parse_config(text, path);
    if (!current) return std::move(current).error();
    std::string out = text;
    const ServerConfig* known = current->find_server(server.name);
    if (known != nullptr && !known->host_key.empty()) {
      if (known->host_key != offered) return host_key_mismatch(known->host_key, offered, path, endpoint);
      return out;
    }
    if (known == nullptr) {
      // A server given as --server HOST[:PORT]: it gets a table of its own, named after it.
      for (const auto& [key, value] : {std::pair<std::string, std::string>{"host", toml_string(server.addresses.front())},
                                       {"port", std::to_string(server.port)}}) {
        auto edited = set_server_value(out, path, server.name, key, value);
        if (!edited) return std::move(edited).error();
        out = std::move(*edited);
      }
    }
    auto edited = set_server_value(out, path, server.name, "host_key", toml_string(offered));
    if (!edited) return std::move(edited).error();
    out = std::move(*edited);
    if (current->default_server.empty()) {
      // The first server a player uses becomes the default, so `game score 5` just works next time.
      auto with_default = set_top_level_value(out, path, "default_server", toml_string(server.name));
      if (!with_default) return std::move(with_default).error();
      out = std::move(*with_default);
    }
    return out;
  };
}

}  // namespace

Status check_host_key(const std::string& offered, const std::string& pin, const ServerConfig& server,
                      const std::string& config_path, const std::string& endpoint, Trace& trace) {
  if (!pin.empty()) {
    if (pin != offered) return host_key_mismatch(pin, offered, "--host-key", endpoint);
    trace.step("host key " + offered + " matches --host-key");
    return {};
  }
  if (!server.host_key.empty()) {
    if (server.host_key != offered) return host_key_mismatch(server.host_key, offered, config_path, endpoint);
    trace.step("host key " + offered + " matches the config");
    return {};
  }
  auto updated = update_config(config_path, record_edit(server, offered, config_path, endpoint));
  if (!updated) return std::move(updated).error();
  std::fprintf(stderr, "game: trusting %s on first use: host key %s (recorded in %s)\n", endpoint.c_str(),
               offered.c_str(), config_path.c_str());
  trace.step("recorded host key " + offered);
  return {};
}

}  // namespace game
