// Every change the client makes to a config file is here, with the rules that decide it: the
// lock they share, creating the file, recording host keys (and the default server), and
// swapping the identity on import. Everything else only reads the config.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "error.h"

namespace game {

// The lock file of `config`: in the .game directory beside it (~/.game/.gameconfig.lock), so
// that $HOME holds one dotfile of ours and each config has a lock of its own.
std::string lock_path(const std::string& config);

// Applies `edit` to the config file's current text under the lock (waiting at most `lock_wait`),
// validates the result and replaces the file atomically (mode 0600). The file is left
// untouched when anything fails.
using ConfigEdit = std::function<Result<std::string>(const std::string& text)>;
Result<Config> update_config(const std::string& path, const ConfigEdit& edit,
                             std::chrono::milliseconds lock_wait);

// Writes a new config naming `uuid` and `key` (already under the lock), optionally with servers.
Status create_config(const std::string& path, const std::string& uuid, const std::string& key,
                     const std::vector<ServerConfig>& servers);

enum class HostKeyRecord {
  kFirstUse,  // trust on first use (or a --host-key pin seen for the first time): a key
              // recorded meanwhile by another process wins, and must match
  kReplace,   // `game trust`: deliberately replaces what is recorded for this node
};

// Records `fingerprint` as the host key `endpoint` of `server` presented. A server named on the
// command line (HOST:PORT) gets a table of its own. Where it goes: `shared` (a --host-key pin
// meant for every node) or a server with one address -> host_key; several addresses -> the
// node's entry in host_keys, so that re-pinning one node never changes what the others must
// present. The first server recorded becomes default_server when there is none, so that
// `game score 5` works next time.
Status record_host_key(const std::string& path, const ServerConfig& server, const std::string& endpoint,
                       const std::string& fingerprint, HostKeyRecord how, bool shared,
                       std::chrono::milliseconds lock_wait);

// Records that `server_name` speaks `protocol`, found out at `now` (seconds since the epoch). A
// server that has no table in the file (given as --server HOST:PORT) is not recorded.
Status record_protocol(const std::string& path, const std::string& server_name, int protocol,
                       std::int64_t now, std::chrono::milliseconds lock_wait);

// The config text of an import into an existing config `text`: the identity replaced, the user's
// servers, comments and keys kept, servers from the export that `text` lacks added.
Result<std::string> with_imported_identity(const std::string& text, const std::string& path,
                                           const std::string& uuid, const std::string& key,
                                           const std::vector<ServerConfig>& servers);

}  // namespace game
