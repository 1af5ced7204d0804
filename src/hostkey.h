// Host key policy: a pinned fingerprint is checked from the first connection; otherwise the
// first key seen is recorded in the config (trust on first use) and checked ever after.
// A server with several addresses shares one host_key, or has one per node in host_keys.
#pragma once

#include <string>

#include "config.h"
#include "error.h"
#include "trace.h"

namespace game {

// `offered` is the fingerprint `endpoint` (host:port) presented; `pin` is --host-key (may be
// empty); `server` is the config entry as loaded.
Status check_host_key(const std::string& offered, const std::string& pin, const ServerConfig& server,
                      const std::string& config_path, const std::string& endpoint, Trace& trace);

// The key currently expected for `endpoint` of `server` (empty if none is known yet).
std::string expected_host_key(const ServerConfig& server, const std::string& endpoint);

// `game trust`: records `offered` as the key of `server` (of its node `endpoint` when the server
// has several addresses and no shared key), replacing a previous one deliberately.
Status pin_host_key(const std::string& offered, const ServerConfig& server, const std::string& config_path,
                    const std::string& endpoint);

}  // namespace game
