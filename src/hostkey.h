// Host key policy: a pinned fingerprint is checked from the first connection; otherwise the
// first key seen is recorded in the config (trust on first use) and checked ever after.
#pragma once

#include <string>

#include "config.h"
#include "error.h"
#include "trace.h"

namespace game {

// `offered` is the server's fingerprint; `pin` is --host-key (may be empty); `server` is the
// entry as loaded (its host_key, if any, is the recorded or pinned key).
Status check_host_key(const std::string& offered, const std::string& pin, const ServerConfig& server,
                      const std::string& config_path, const std::string& endpoint, Trace& trace);

}  // namespace game
