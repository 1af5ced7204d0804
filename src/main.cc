// Parses the command line and hands over to a command; turns its result into the exit code.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.h"
#include "crypto_init.h"
#include "signals.h"

namespace {

int exit_code(const game::Result<game::Exit>& result) {
  if (result) return static_cast<int>(*result);
  std::fprintf(stderr, "game: %s\n", result.error().message.c_str());
  return static_cast<int>(result.error().code);
}

}  // namespace

// Only std::bad_alloc, or std::random_device failing (src/fs.cc, src/commands.cc), can escape:
// every other failure is a Result, and CLI11's parse errors are caught below.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  game::ignore_sigpipe();
  if (!game::init_crypto())
    return exit_code(game::make_error(game::Exit::kIoErr, "cannot initialise OpenSSL"));
  CLI::App app{"Plays on SSH-key game servers: your identity is a UUID and an SSH key in ~/.gameconfig.",
               "game"};
  app.require_subcommand(1);
  app.set_version_flag("--version", game::version_text());
  app.footer(
      "Exit codes: 0 ok, 1 rejected by the server, 64 usage, 65 bad input data, 66 no input file,\n"
      "69 server unavailable, 74 local I/O error, 75 timeout, 76 protocol error,\n"
      "77 permission denied (host key, authentication, file modes), 78 config error,\n"
      "129/130/143 stopped by SIGHUP/SIGINT/SIGTERM (after a summary of what the server confirmed).");

  game::GlobalOptions global;
  app.add_option("--server", global.server, "Server name from the config, or HOST[:PORT] ([IPv6]:PORT)");
  app.add_option("--config", global.config, "Config file (default: $GAME_CONFIG, else ~/.gameconfig)");
  app.add_option("--host-key", global.host_key, "Require this host key fingerprint (SHA256:...)");
  app.add_option("--timeout", global.timeout, "Seconds to wait for the server at any step")
      ->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "Print each step and its duration on stderr");
  app.add_flag("--dry-run", global.dry_run, "Print the BER bytes of the requests in hex; send nothing");

  std::string name;
  auto* setname = app.add_subcommand("setname", "Set your player name");
  setname->add_option("NAME", name, "The new name (UTF-8)")->required();

  std::string value;
  auto* score = app.add_subcommand("score", "Add a score (a whole number, e.g. 789 or -5)");
  score->add_option("VALUE", value, "The score, a 64-bit signed integer")->required();

  auto* whoami = app.add_subcommand("whoami", "Show your UUID, key fingerprint, public key and paths");

  game::BatchOptions batch_options;
  auto* batch = app.add_subcommand("batch", "Send commands read line by line from FILE or standard input");
  batch->add_option("FILE", batch_options.file,
                    "File of 'setname NAME' / 'score VALUE' lines; '-' for stdin");
  batch->add_flag("--follow", batch_options.follow,
                  "Send stdin lines as they arrive (for a pipe from a running program)");
  batch->add_flag("--json", batch_options.json,
                  "Print one JSON object per line result, then a summary object");
  batch->add_option("--from-line", batch_options.from_line, "Skip the lines before this one (to resume)");

  std::string adopt_key;
  auto* init =
      app.add_subcommand("init", "Create your identity now (a new ed25519 key, or adopt one with --key)");
  init->add_option("--key", adopt_key,
                   "Use this existing private key (ed25519, ecdsa or rsa) instead of a new one");

  std::string trust_server;
  bool trust_yes = false;
  auto* trust = app.add_subcommand("trust", "Connect, show the server's host key fingerprint and pin it");
  trust->add_option("SERVER", trust_server,
                    "Server name or HOST[:PORT] (default: --server, else default_server)");
  trust->add_flag("-y,--yes", trust_yes, "Pin without asking (for scripts)");

  auto* identity = app.add_subcommand("identity", "Back up or restore your identity (UUID + private key)");
  identity->require_subcommand(1);
  std::string export_output;
  auto* identity_export = identity->add_subcommand("export", "Write the whole identity as one text blob");
  identity_export->add_option("-o,--output", export_output,
                              "Write to this new file (mode 0600) instead of stdout");
  std::string import_input;
  bool import_force = false;
  auto* identity_import =
      identity->add_subcommand("import", "Restore an identity written by `game identity export`");
  identity_import->add_option("FILE", import_input, "The exported identity ('-' or none: stdin)");
  identity_import->add_flag("--force", import_force,
                            "Replace a different existing identity (it is kept aside)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(game::Exit::kUsage);
  }

  if (*setname) return exit_code(game::run_setname(global, name));
  if (*score) return exit_code(game::run_score(global, value));
  if (*whoami) return exit_code(game::run_whoami(global));
  if (*init) return exit_code(game::run_init(global, adopt_key));
  if (*trust) return exit_code(game::run_trust(global, trust_server, trust_yes));
  if (*identity_export) return exit_code(game::run_identity_export(global, export_output));
  if (*identity_import) return exit_code(game::run_identity_import(global, import_input, import_force));
  return exit_code(game::run_batch(global, batch_options));
}
