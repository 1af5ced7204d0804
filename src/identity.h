// The player's identity: a UUID and an SSH key, named by the config file. Created once, on first
// use, under a lock so that parallel first runs end with one identity; loaded ever after.
#pragma once

#include <functional>
#include <string>

#include "config.h"
#include "error.h"
#include "ssh_handles.h"
#include "trace.h"

namespace game {

struct Identity {
  std::string uuid;
  std::string key_path;  // expanded
  SshKey key;            // the private key
  std::string public_line;  // "ssh-ed25519 AAAA... game:<uuid>"
  std::string fingerprint;  // "SHA256:..."
};

struct Account {
  Config config;
  Identity identity;
};

// --config, else $GAME_CONFIG, else ~/.gameconfig.
Result<std::string> config_path(const std::string& flag);

// Loads the account of `path`; creates config and key first when `path` does not exist.
Result<Account> open_account(const std::string& path, Trace& trace);

// Applies `edit` to the config file's current text under the lock, validates the result and
// replaces the file atomically (mode 0600). The file is left untouched when anything fails.
using ConfigEdit = std::function<Result<std::string>(const std::string& text)>;
Result<Config> update_config(const std::string& path, const ConfigEdit& edit);

// A random (getrandom) version 4 UUID.
std::string generate_uuid();

}  // namespace game
