// ~/.gameconfig: the player's account (UUID, key location) and the servers they play on.
//
//   default_server = "main"          # used when --server is not given
//   [identity]
//   uuid = "0b3c...-4...-..."          # version 4, from getrandom(2)
//   key = "~/.game/id_ed25519"         # OpenSSH private key; "~/" is $HOME
//   rotating_to = "..."                # only while `game key rotate` is unfinished
//   [servers.main]
//   host = "game.example.org"          # or addresses = ["node1:9022", "node2:9022"]
//   port = 9022
//   subsystem = "game"
//   host_key = "SHA256:..."            # pinned, or recorded on first use
//   acks = "auto"                      # "auto" | "yes" | "no"
//   order = "listed"                   # or "random": which address is tried first
//   protocol = 2                       # recorded: the protocol the server speaks (1 or 2)
//   protocol_checked = 2026-12-01T21:00:00Z   # recorded: when that was last found out
//   [servers.main.host_keys]           # per node, when nodes have keys of their own
//   "node1:9022" = "SHA256:..."
//
// Reading uses toml++. Writing never re-serialises the document: the client's few changes are
// spliced into the user's text, so comments, order and unknown keys survive byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "error.h"

namespace game {

enum class AckMode { kAuto, kYes, kNo };

struct ServerConfig {
  std::string name;                    // the key under [servers]
  std::vector<std::string> addresses;  // "host[:port]" each; `host` alone is one address
  std::uint16_t port = 9022;           // default port for addresses without one
  std::string subsystem = "game";
  std::string host_key;  // "SHA256:..." or empty (trust on first use)
  AckMode acks = AckMode::kAuto;
  bool shuffle = false;                          // order = "random"
  std::map<std::string, std::string> node_keys;  // [servers.NAME.host_keys]: "host:port" -> key
  int protocol = 0;                              // recorded protocol: 0 (not yet known), 1 or 2
  std::int64_t protocol_checked = 0;             // when it was recorded, seconds since the epoch
};

// A config larger than this is refused before it is parsed: a real one is a few hundred bytes,
// and parsing costs time and memory in proportion (43 MB took 17 s and 0.7 GB).
constexpr std::size_t kMaxConfigBytes = 256 * 1024;

struct Config {
  std::string path;
  std::string uuid;
  std::string key;  // as written in the file (may start with "~/")
  // `game key rotate` in progress (docs/keys.md): the new key's path until the server holds it,
  // then the old key's public line until the server no longer does. Empty: none.
  std::string rotating_to;
  std::string rotated_from;
  std::string default_server;
  std::vector<ServerConfig> servers;
  // "PATH:LINE:COLUMN: unknown key ..." for each key the client does not know (a typo, likely).
  std::vector<std::string> warnings;

  const ServerConfig* find_server(const std::string& name) const;
};

// Parses and validates `text` (read from `path`); errors carry path:line:column.
Result<Config> parse_config(const std::string& text, const std::string& path);

// The text of a newly created config file.
std::string new_config_text(const std::string& uuid, const std::string& key);

// Returns `text` with `key = value` set in the table at `table` (e.g. {"servers", "main"}): an
// existing value is replaced in place, a missing key is added at the end of its table, a
// missing table is appended. `value` is a TOML literal (see toml_string). Fails if the table
// is not a plain [table].
Result<std::string> set_table_value(const std::string& text, const std::string& path,
                                    const std::vector<std::string>& table, const std::string& key,
                                    const std::string& value);
// Returns `text` without the line of `key` in the table at `table` (unchanged if it is not there).
Result<std::string> remove_table_value(const std::string& text, const std::string& path,
                                       const std::vector<std::string>& table_path, const std::string& key);
// Returns `text` with the top-level `key = value` set (inserted before the first table).
Result<std::string> set_top_level_value(const std::string& text, const std::string& path,
                                        const std::string& key, const std::string& value);

// A TOML basic string literal for `s`, with quotes and escapes.
std::string toml_string(const std::string& s);

// The [servers.NAME] table that describes `server` (addresses, port, subsystem, host keys).
std::string server_table_text(const ServerConfig& server);

// The text of `game identity export`: what a new machine needs to be the same player: the UUID,
// the private key file, and the servers with their pinned host keys, as TOML.
struct IdentityBlob {
  std::string uuid;
  std::string private_key;  // the key file's contents (OpenSSH or PEM)
  std::string default_server;
  std::vector<ServerConfig> servers;
};
std::string identity_blob_text(const IdentityBlob& blob);
Result<IdentityBlob> parse_identity_blob(const std::string& text, const std::string& origin);

}  // namespace game
