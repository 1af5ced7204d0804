// Account keys (docs/keys.md): linking a device, listing, removing and rotating the keys of the
// account, through protocol 2's account requests. Toward a server that speaks only protocol 1
// every one of them fails with kUnavailable and changes nothing.
#pragma once

#include <string>

#include "commands.h"
#include "error.h"

namespace game {

// `game link [--label L]`, on the new device: its key (made if missing), and the command to run
// on a device that plays. `game link --uuid U` (with --server and --host-key), as that device
// prints it: this device becomes U.
Result<Exit> run_link(const GlobalOptions& options, const std::string& label, const std::string& uuid);
// `game key add [--label L] 'TYPE BASE64'`: adds the public key of another device.
Result<Exit> run_key_add(const GlobalOptions& options, const std::string& public_line,
                         const std::string& label);
Result<Exit> run_key_list(const GlobalOptions& options, bool json);
Result<Exit> run_key_remove(const GlobalOptions& options, const std::string& fingerprint);
Result<Exit> run_key_rotate(const GlobalOptions& options, const std::string& label);

}  // namespace game
