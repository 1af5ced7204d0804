// The subcommands. Each returns the exit status of a successful run (kOk, or kRejected when the
// server refused something) or the Error that stopped it; main() turns either into an exit code.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config.h"
#include "error.h"
#include "identity.h"
#include "trace.h"

namespace game {

struct GlobalOptions {
  std::string server;    // --server NAME or HOST[:PORT]
  std::string config;    // --config PATH
  std::string host_key;  // --host-key SHA256:...
  double timeout = 10;   // --timeout SECONDS
  bool verbose = false;
  bool quiet = false;  // -q: no progress line, confirmation or hint
  bool dry_run = false;
};

struct BatchOptions {
  std::string file = "-";
  bool follow = false;
  bool json = false;
  std::string from_line_text = "1";  // --from-line as typed, checked by run_batch
  std::uint64_t from_line = 1;
  bool resume = false;  // --resume: continue FILE's journaled submission
  bool fresh = false;   // --new: start a new submission of FILE, dropping the journaled one
};

Result<Exit> run_setname(const GlobalOptions& options, const std::string& name);
Result<Exit> run_score(const GlobalOptions& options, const std::string& value);
Result<Exit> run_whoami(const GlobalOptions& options, bool json);
Result<Exit> run_batch(const GlobalOptions& options, const BatchOptions& batch);
Result<Exit> run_init(const GlobalOptions& options, const std::string& adopt_key);
Result<Exit> run_trust(const GlobalOptions& options, const std::string& server, bool yes);
Result<Exit> run_identity_export(const GlobalOptions& options, const std::string& output);
Result<Exit> run_identity_import(const GlobalOptions& options, const std::string& input, bool force);

// Shared by the commands (here and in keys.cc).
Status check_options(const GlobalOptions& options);
std::chrono::milliseconds timeout_of(const GlobalOptions& options);
// Protocol 2: how long a unit of work keeps reconnecting after a lost connection.
std::chrono::milliseconds reconnect_window(const GlobalOptions& options);
// The server entry `flag` (--server) names, or the default server.
Result<ServerConfig> select_server(const Config& config, const std::string& flag);
// An existing account: commands that only look or change keys never create one. `purpose`
// ends the message when there is none.
Result<Account> existing_account(const GlobalOptions& options, const std::string& purpose, Trace& trace);

// "game 0.1.0 (libssh 0.10.6, OpenSSL 3.0.x)"
std::string version_text();

}  // namespace game
