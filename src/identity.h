// The player's identity: a UUID and an SSH key, named by the config file. Created once, on first
// use, under a lock so that parallel first runs end with one identity; loaded ever after.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent.h"
#include "config.h"
#include "error.h"
#include "ssh_handles.h"
#include "trace.h"

namespace game {

struct Identity {
  std::string uuid;
  std::string key_path;  // expanded
  SshKey public_key;
  std::string public_line;  // "ssh-ed25519 AAAA... game:<uuid>"

  // "SHA256:...", as ssh-keygen -lf prints it. Computed when shown, not when loaded: the first
  // SHA-256 of a process is dear in OpenSSL 3 (docs/PERFORMANCE.md), and most commands never
  // show it.
  std::string fingerprint() const;

  // How to sign, set by unlock(): the ssh-agent if it holds the key, else the private key
  // (asking for its passphrase on the terminal when it has one).
  SshKey private_key;
  std::unique_ptr<AgentKey> agent;
  Status unlock();
};

struct Account {
  Config config;
  Identity identity;
};

// --config, else $GAME_CONFIG, else ~/.gameconfig.
Result<std::string> config_path(const std::string& flag);

// Loads the account of `path`; creates config and key first when `path` does not exist.
// Only the public half of the key is read here: see Identity::unlock().
Result<Account> open_account(const std::string& path, std::chrono::milliseconds lock_wait, Trace& trace);

// `game init [--key KEY]`: a new identity, with a new ed25519 key or with KEY adopted.
Result<Account> init_account(const std::string& path, const std::string& adopt_key,
                             std::chrono::milliseconds lock_wait, Trace& trace);

// `game identity export`: the whole identity (UUID, private key file, servers and their pinned
// host keys) as one TOML text.
Result<std::string> export_identity(const Account& account);
// `game identity import`: restores an exported identity into `path`. An existing different
// identity is replaced only with `force`, and then kept aside (a copy of its config, its key left
// in place), never deleted. The new key is written first and the config last, atomically: a
// failure at any step leaves the old identity as it was.
Result<std::string> import_identity(const std::string& path, const std::string& blob, bool force,
                                    std::chrono::milliseconds lock_wait, Trace& trace);

// Where a new identity's key goes: .game/id_ed25519 beside the config file (for a config not named
// .gameconfig, id_ed25519-NAME).
std::string default_key_path(const std::string& config);
// A new ed25519 key at `key_path` (created exclusively, 0600) and its .pub, commented game:<uuid>.
Status generate_key(const std::string& key_path, const std::string& uuid);
// The identity `uuid` has with the key at `key_path`; only its public half is read.
Result<Identity> load_key(const std::string& uuid, const std::string& key_path);

// A random (getrandom) version 4 UUID.
std::string generate_uuid();

}  // namespace game
