// Fuzz target: game::parse_config (~/.gameconfig, hand-edited by users) and the edits the client
// makes to a config that parses: recording a host key for a known or a new server, per-node host
// keys, the default server, and an identity import (src/hostkey.cc, src/identity.cc).
//
// Input: the config text, optionally followed by a NUL byte and a server name (the name a user
// gives as --server, e.g. "127.0.0.1:9022"; anything goes, it is quoted as a TOML key, except
// invalid UTF-8, which could never be resolved and recorded: the default name is used then).
// Checks beyond "no crash, no leak, no undefined behaviour":
//  - an error is a config error (exit 78) with a PATH:LINE:COLUMN message;
//  - each edit either fails with a config error (e.g. the table is an inline table) or yields a
//    text that still parses as a config, holds the new value, and keeps the identity as it was.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.h"
#include "text.h"

namespace {

const std::string kPath = "fuzz.gameconfig";
const std::string kKey = "SHA256:uzDx3Hq8jd3cDNKSqL1JjpqcH7EUKBxMXxMB1pxaRpA";
const std::string kUuid = "0b3c5a52-7f0e-4f43-9d1c-2a8f6f3e9b10";

std::string current_input;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_config: %s\ninput (hex): %s\n", what,
                 game::text::to_hex(current_input).c_str());
    std::abort();
  }
}

void check_error(const game::Error& error) {
  check(error.code == game::Exit::kConfig, "an error that is not a config error");
  check(error.message.rfind(kPath + ":", 0) == 0, "an error that does not start with PATH:");
}

// The config after `edit`, or nullopt if the edit was refused with a config error.
template <class Edit>
std::optional<game::Config> edited(const game::Config& before, Edit edit, const char* what) {
  game::Result<std::string> text = edit();
  if (!text) {
    check_error(text.error());
    return std::nullopt;
  }
  auto after = game::parse_config(*text, kPath);
  if (!after) {
    std::fprintf(stderr, "fuzz_config: after %s: %s\nedited text:\n%s\n", what, after.error().message.c_str(),
                 text->c_str());
  }
  check(static_cast<bool>(after), "an edit of a valid config made it invalid");
  check(after->uuid == before.uuid && after->key == before.key, "an edit changed the identity");
  return std::move(*after);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  current_input = std::string(input);
  const std::size_t nul = input.find('\0');
  const std::string text(input.substr(0, nul));
  std::string new_server = "127.0.0.1:9022";
  // A server name the user typed; one that is not UTF-8 can never be resolved and recorded.
  if (nul != std::string_view::npos && game::text::is_valid_utf8(input.substr(nul + 1))) {
    new_server = std::string(input.substr(nul + 1));
  }

  auto config = game::parse_config(text, kPath);
  if (!config) {
    check_error(config.error());
    return 0;
  }

  // Host key of a server (src/hostkey.cc record_edit): a known server gets host_key replaced or
  // added; an unknown one gets host, port and host_key in a new [servers.NAME] table.
  std::vector<std::string> names;
  for (const auto& server : config->servers) {
    if (names.size() < 2) names.push_back(server.name);
  }
  if (config->find_server(new_server) == nullptr) names.push_back(new_server);
  for (const std::string& name : names) {
    const bool known = config->find_server(name) != nullptr;
    std::string out = text;
    bool refused = false;
    if (!known) {
      for (const auto& [key, value] :
           {std::pair<std::string, std::string>{"host", game::toml_string("127.0.0.1")},
            std::pair<std::string, std::string>{"port", "9022"}}) {
        auto step = game::set_table_value(out, kPath, {"servers", name}, key, value);
        if (!step) {
          check_error(step.error());
          refused = true;
          break;
        }
        out = std::move(*step);
      }
      if (refused) continue;
    }
    auto after = edited(
        *config,
        [&] {
          return game::set_table_value(out, kPath, {"servers", name}, "host_key", game::toml_string(kKey));
        },
        "recording a host key");
    if (after) {
      const auto* server = after->find_server(name);
      check(server != nullptr && server->host_key == kKey, "the recorded host key does not read back");
    }
    // Per-node key of a cluster member.
    auto nodes = edited(
        *config,
        [&] {
          return game::set_table_value(out, kPath, {"servers", name, "host_keys"}, "node1:9022",
                                       game::toml_string(kKey));
        },
        "recording a node's host key");
    if (nodes) {
      const auto* server = nodes->find_server(name);
      check(server != nullptr && server->node_keys.count("node1:9022") == 1 &&
                server->node_keys.at("node1:9022") == kKey,
            "the recorded node key does not read back");
    }
    // The first server used becomes the default.
    if (known) {
      auto with_default = edited(
          *config,
          [&] { return game::set_top_level_value(text, kPath, "default_server", game::toml_string(name)); },
          "setting default_server");
      if (with_default) check(with_default->default_server == name, "default_server does not read back");
    }
  }

  // `game identity import` into an existing config: uuid and key replaced in [identity].
  auto uuid_step = game::set_table_value(text, kPath, {"identity"}, "uuid", game::toml_string(kUuid));
  if (!uuid_step) {
    check_error(uuid_step.error());
    return 0;
  }
  auto key_step =
      game::set_table_value(*uuid_step, kPath, {"identity"}, "key", game::toml_string("~/.game/imported"));
  if (!key_step) {
    check_error(key_step.error());
    return 0;
  }
  auto imported = game::parse_config(*key_step, kPath);
  if (!imported) std::fprintf(stderr, "fuzz_config: after an import: %s\n", imported.error().message.c_str());
  check(static_cast<bool>(imported), "an identity import made a valid config invalid");
  check(imported->uuid == kUuid && imported->key == "~/.game/imported",
        "the imported identity does not read back");
  check(imported->servers.size() == config->servers.size(), "an identity import changed the servers");
  return 0;
}
