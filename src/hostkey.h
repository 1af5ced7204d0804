// Host key policy: a pinned fingerprint is checked from the first connection; otherwise the
// first key seen is recorded in the config (trust on first use) and checked ever after.
// A server with several addresses shares one host_key, or has one per node in host_keys.
#pragma once

#include <chrono>
#include <string>

#include "config.h"
#include "error.h"
#include "trace.h"

namespace game {

// Checks the fingerprint `offered` by `endpoint` (host:port) of `server` against `pin`
// (--host-key, may be empty) and the config. A key not yet known is recorded (config_store.h):
// the pin when there is one, else the key offered (trust on first use).
Status check_host_key(const std::string& offered, const std::string& pin, const ServerConfig& server,
                      const std::string& config_path, const std::string& endpoint,
                      std::chrono::milliseconds lock_wait, Trace& trace);

// The key currently expected for `endpoint` of `server` (empty if none is known yet): the node's
// own entry in host_keys, else the shared host_key.
std::string expected_host_key(const ServerConfig& server, const std::string& endpoint);

// The refusal of a key that differs from the one expected (`source` says where that came from).
Error host_key_mismatch(const std::string& expected, const std::string& offered, const std::string& source,
                        const std::string& endpoint, const std::string& server);

}  // namespace game
