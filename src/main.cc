// Parses the command line and hands over to a command; turns its result into the exit code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "commands.h"
#include "crypto_init.h"
#include "keys.h"
#include "signals.h"
#include "suggest.h"

namespace {

using game::Exit;
using game::Result;
using Handler = std::function<Result<Exit>()>;

int exit_code(const Result<Exit>& result) {
  if (result) return static_cast<int>(*result);
  std::fprintf(stderr, "game: %s\n", result.error().message.c_str());
  return static_cast<int>(result.error().code);
}

using Define = std::function<void(CLI::App&)>;

// Every subcommand is created together with what runs it, so a new one cannot be left to fall
// through to another command's code; a group (`identity`) has no handler of its own. Only the
// top-level subcommand the command line names is made: defining the other fifteen, their
// options and help texts cost CLI11 more instructions than the rest of start-up together
// (docs/PERFORMANCE.md). When the line names none of them (a typo, `help`, `--help`, nothing),
// finish() makes them all, so that usage and suggestions see every command.
class Dispatch {
 public:
  Dispatch(CLI::App& top, std::string named) : top_(top), named_(std::move(named)) {}

  // The texts are literals: a command that is not made costs no copies of them.
  void add(CLI::App& parent, const char* name, const char* description, const char* examples, Handler run,
           Define define = {}) {
    Command command{&parent, name, description, examples, std::move(run), std::move(define)};
    if (&parent == &top_ && name != named_) {
      deferred_.push_back(std::move(command));
      return;
    }
    make(command);
  }
  void finish() {
    if (!made_named_) {
      for (const Command& command : deferred_) make(command);
    }
    deferred_.clear();
  }
  // The handler of the subcommand that was parsed; nullptr only if one was added without one.
  const Handler* chosen() const {
    for (auto it = handlers_.rbegin(); it != handlers_.rend(); ++it) {
      if (it->first->parsed() && it->second) return &it->second;
    }
    return nullptr;
  }

 private:
  struct Command {
    CLI::App* parent;
    const char* name;
    const char* description;
    const char* examples;
    Handler run;
    Define define;
  };
  void make(const Command& command) {
    CLI::App* app = command.parent->add_subcommand(command.name, command.description);
    app->footer(*command.examples == '\0' ? std::string() : std::string("Examples:\n") + command.examples);
    handlers_.emplace_back(app, command.run);
    if (command.parent == &top_ && command.name == named_) made_named_ = true;
    if (command.define) command.define(*app);
  }
  CLI::App& top_;
  std::string named_;
  bool made_named_ = false;
  std::vector<Command> deferred_;
  std::vector<std::pair<CLI::App*, Handler>> handlers_;
};

std::string shell_quoted(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string command_path(const CLI::App* command) {
  std::string path;
  for (; command != nullptr; command = command->get_parent()) {
    path = command->get_name() + (path.empty() ? "" : " ") + path;
  }
  return path;
}

std::vector<std::string> subcommand_names(CLI::App* command) {
  std::vector<std::string> names;
  for (const CLI::App* sub : command->get_subcommands({})) names.push_back(sub->get_name());
  return names;
}

CLI::App* find_subcommand(CLI::App* command, const std::string& word) {
  for (CLI::App* sub : command->get_subcommands({})) {
    if (sub->check_name(word)) return sub;
  }
  return nullptr;
}

// The option `word` names on `command` or an ancestor (options fall through to the parents).
const CLI::Option* find_option(const CLI::App* command, const std::string& word) {
  const std::string name = word.substr(0, word.find('='));
  for (; command != nullptr; command = command->get_parent()) {
    if (const CLI::Option* option = command->get_option_no_throw(name)) return option;
  }
  return nullptr;
}

// The first word of the command line that is neither an option nor a global option's value: the
// subcommand it names, if any ("" after `--`, or when there is none). `help` names every one.
std::string named_subcommand(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return "";
    if (word.size() > 1 && word[0] == '-') {
      const CLI::Option* option = app.get_option_no_throw(word.substr(0, word.find('=')));
      if (option != nullptr && option->get_items_expected_min() > 0 && word.find('=') == std::string::npos)
        ++i;
      continue;
    }
    return word == "help" ? "" : word;
  }
  return "";
}

// "-vq": short flags written together, each known to `command` or an ancestor.
bool is_flag_group(const CLI::App* command, const std::string& word) {
  if (word.size() < 3 || word[1] == '-') return false;
  for (std::size_t i = 1; i < word.size(); ++i) {
    const CLI::Option* option = find_option(command, std::string("-") + word[i]);
    if (option == nullptr || option->get_items_expected_min() > 0) return false;
  }
  return true;
}

bool looks_like_number(const std::string& word) {
  char* end = nullptr;
  std::strtod(word.c_str(), &end);
  return !word.empty() && *end == '\0';
}

// What CLI11 would answer less helpfully ("A subcommand is required", "NAME is required"): a
// mistyped subcommand, with the one meant, and an argument that starts with '-', with `--`.
game::Status check_words(CLI::App& app, int argc, char** argv) {
  CLI::App* command = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") break;
    if (word.size() > 1 && word[0] == '-') {
      const CLI::Option* option = find_option(command, word);
      if (option != nullptr) {
        if (option->get_items_expected_min() > 0 && word.find('=') == std::string::npos) ++i;
        continue;
      }
      if (command->get_subcommands({}).empty() && !looks_like_number(word) && !is_flag_group(command, word)) {
        const std::string path = command_path(command);
        return game::make_error(Exit::kUsage, shell_quoted(word) + " is not an option of " + path +
                                                  "; an argument that starts with '-' goes after '--': " +
                                                  path + " -- " + shell_quoted(word));
      }
      continue;  // CLI11 names it
    }
    const std::vector<std::string> names = subcommand_names(command);
    if (names.empty()) continue;  // a positional argument of a leaf command
    CLI::App* sub = find_subcommand(command, word);
    if (sub == nullptr) {
      return game::make_error(Exit::kUsage, "'" + word + "' is not a " + command_path(command) + " command" +
                                                game::did_you_mean(word, names) + " (see '" +
                                                command_path(command) + " --help')");
    }
    command = sub;
  }
  return {};
}

// `game help [COMMAND...]`: the --help page of game or of that command, on stdout.
Result<Exit> show_help(CLI::App& app, const std::vector<std::string>& topic) {
  CLI::App* command = &app;
  for (const std::string& word : topic) {
    CLI::App* sub = find_subcommand(command, word);
    if (sub == nullptr) {
      return game::make_error(Exit::kUsage, "'" + word + "' is not a " + command_path(command) + " command" +
                                                game::did_you_mean(word, subcommand_names(command)));
    }
    command = sub;
  }
  // Not command->help(): on `game help` that would show the help of `help`, the parsed subcommand.
  std::fputs(
      command->get_formatter()->make_help(command, command_path(command), CLI::AppFormatMode::Normal).c_str(),
      stdout);
  return Exit::kOk;
}

// CLI11's parse errors in the one-line form of every other error.
int parse_error(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App* deepest = &app;
  for (auto subs = app.get_subcommands(); !subs.empty(); subs = deepest->get_subcommands()) {
    deepest = subs.front();
  }
  std::string message = e.what();
  if (e.get_name() == "RequiredError" && deepest->get_subcommands({}).size() > 0 &&
      deepest->get_subcommands().empty()) {
    message = "no command given";
  }
  std::fprintf(stderr, "game: %s (see '%s --help')\n", message.c_str(), command_path(deepest).c_str());
  return static_cast<int>(Exit::kUsage);
}

// GAME_SERVER, GAME_HOST_KEY and GAME_TIMEOUT stand in for options not on the command line: the
// command line beats the environment, which beats the config file. Empty means unset.
game::Status apply_environment(const CLI::App& app, game::GlobalOptions& global) {
  auto from_env = [&app](const char* option, const char* variable) -> const char* {
    const char* value = std::getenv(variable);
    return app.count(option) == 0 && value != nullptr && *value != '\0' ? value : nullptr;
  };
  if (const char* server = from_env("--server", "GAME_SERVER")) global.server = server;
  if (const char* host_key = from_env("--host-key", "GAME_HOST_KEY")) global.host_key = host_key;
  if (const char* timeout = from_env("--timeout", "GAME_TIMEOUT")) {
    char* end = nullptr;
    global.timeout = std::strtod(timeout, &end);
    if (*end != '\0') {
      return game::make_error(Exit::kUsage,
                              std::string("GAME_TIMEOUT=") + timeout + ": not a number of seconds");
    }
  }
  return {};
}

const char* const kExitCodes =
    "Exit codes: 0 ok, 1 rejected by the server, 64 usage, 65 bad input data, 66 no input file,\n"
    "69 server unavailable, 74 local I/O error, 75 timeout, 76 protocol error,\n"
    "77 permission denied (host key, authentication, file modes), 78 config error,\n"
    "129/130/143 stopped by SIGHUP/SIGINT/SIGTERM (after a summary of what the server confirmed).";

const char* const kExamples =
    "Examples:\n"
    "  game --server play.example.org setname Zoë   first run: creates your identity, pins the host key\n"
    "  game score 789                               to the default server\n"
    "  game batch results.txt                       many lines over one connection\n"
    "  game whoami                                  your UUID, key and servers\n"
    "  game link                                    play from a second device too (docs/keys.md)\n"
    "  game help score                              the help of one command\n";

}  // namespace

// Only std::bad_alloc, or std::random_device failing (src/fs.cc, src/commands.cc), can escape:
// every other failure is a Result, and CLI11's parse errors are caught below.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  game::ignore_sigpipe();
  if (!game::init_crypto()) return exit_code(game::make_error(Exit::kIoErr, "cannot initialise OpenSSL"));
  CLI::App app{"Plays on SSH-key game servers: your identity is a UUID and an SSH key in ~/.gameconfig.",
               "game"};
  app.require_subcommand(1);
  app.fallthrough();  // global options also after the subcommand: `game score 5 --server arena`
  app.set_version_flag("-V,--version", game::version_text());

  game::GlobalOptions global;
  app.add_option("--server", global.server,
                 "Server name from the config, or HOST[:PORT] ([IPv6]:PORT); env GAME_SERVER");
  app.add_option("--config", global.config, "Config file (default: $GAME_CONFIG, else ~/.gameconfig)");
  app.add_option("--host-key", global.host_key,
                 "Require this host key fingerprint (SHA256:...); env GAME_HOST_KEY");
  app.add_option("--timeout", global.timeout, "Seconds to wait for the server at any step; env GAME_TIMEOUT")
      ->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "Print each step and its duration on stderr");
  app.add_flag("-q,--quiet", global.quiet, "No progress line, confirmation or hint; errors only");
  app.add_flag("--dry-run", global.dry_run, "Print the BER bytes of the requests in hex; send nothing");

  Dispatch dispatch(app, named_subcommand(app, argc, argv));
  std::vector<std::string> topic;
  dispatch.add(
      app, "help", "Show the help of game, or of a command", "  game help batch\n",
      [&] { return show_help(app, topic); },
      [&](CLI::App& c) { c.add_option("COMMAND", topic, "The command (e.g. batch, or identity export)"); });

  std::string name;
  dispatch.add(
      app, "setname", "Set your player name",
      "  game setname Zoë\n"
      "  game setname \"Zoë the Bold\"\n"
      "  game setname -- -=Zoë=-        a name that starts with '-'\n",
      [&] { return game::run_setname(global, name); },
      [&](CLI::App& c) { c.add_option("NAME", name, "The new name (UTF-8)")->required(); });

  std::string value;
  dispatch.add(
      app, "score", "Add a score (a whole number, e.g. 789 or -5)",
      "  game score 789\n"
      "  game score -5\n"
      "  game --server arena score 789\n",
      [&] { return game::run_score(global, value); },
      [&](CLI::App& c) { c.add_option("VALUE", value, "The score, a 64-bit signed integer")->required(); });

  bool whoami_json = false;
  dispatch.add(
      app, "whoami", "Show your UUID, key fingerprint, public key and paths",
      "  game whoami\n"
      "  game whoami --json | jq -r .uuid\n",
      [&] { return game::run_whoami(global, whoami_json); },
      [&](CLI::App& c) { c.add_flag("--json", whoami_json, "Print one JSON object (docs/json.md)"); });

  game::BatchOptions batch_options;
  dispatch.add(
      app, "batch", "Send commands read line by line from FILE or standard input",
      "  game batch results.txt\n"
      "  printf 'score 1\\nscore 2\\n' | game batch\n"
      "  producer | game batch --follow --json\n",
      [&] { return game::run_batch(global, batch_options); },
      [&](CLI::App& c) {
        c.add_option("FILE", batch_options.file,
                     "File of 'setname NAME' / 'score VALUE' lines; '-' for stdin");
        c.add_flag("--follow", batch_options.follow,
                   "Send stdin lines as they arrive (for a pipe from a running program)");
        c.add_flag("--json", batch_options.json,
                   "Print one JSON object per line result, then a summary object");
        c.add_option("--from-line", batch_options.from_line_text,
                     "Skip the lines before this one (replaces FILE's unfinished submission)");
        c.add_flag("--resume", batch_options.resume,
                   "Continue FILE's interrupted submission where the server stopped confirming");
        c.add_flag("--new", batch_options.fresh,
                   "Start FILE over as a new submission, dropping its unfinished one");
      });

  std::string adopt_key;
  dispatch.add(
      app, "init", "Create your identity now (a new ed25519 key, or adopt one with --key)",
      "  game init\n"
      "  game init --key ~/.ssh/id_ed25519\n",
      [&] { return game::run_init(global, adopt_key); },
      [&](CLI::App& c) {
        c.add_option("--key", adopt_key,
                     "Use this existing private key (ed25519, ecdsa or rsa) instead of a new one");
      });

  std::string trust_server;
  bool trust_yes = false;
  dispatch.add(
      app, "trust", "Connect, show the server's host key fingerprint and pin it",
      "  game trust arena\n"
      "  game trust play.example.org:9022 --yes\n",
      [&] { return game::run_trust(global, trust_server, trust_yes); },
      [&](CLI::App& c) {
        c.add_option("SERVER", trust_server,
                     "Server name or HOST[:PORT] (default: --server, else default_server)");
        c.add_flag("-y,--yes", trust_yes, "Pin without asking (for scripts)");
      });

  std::string export_output;
  std::string import_input;
  bool import_force = false;
  dispatch.add(app, "identity", "Back up or restore your identity (UUID + private key)",
               "  game identity export -o identity.txt\n"
               "  game identity import identity.txt\n",
               nullptr, [&](CLI::App& identity) {
                 identity.require_subcommand(1);
                 dispatch.add(
                     identity, "export", "Write the whole identity as one text blob",
                     "  game identity export -o identity.txt\n"
                     "  game identity export | ssh newmachine game identity import\n",
                     [&] { return game::run_identity_export(global, export_output); },
                     [&](CLI::App& c) {
                       c.add_option("-o,--output", export_output,
                                    "Write to this new file (mode 0600) instead of stdout");
                     });
                 dispatch.add(
                     identity, "import", "Restore an identity written by `game identity export`",
                     "  game identity import identity.txt\n"
                     "  game identity import --force identity.txt   replace the one here (kept aside)\n",
                     [&] { return game::run_identity_import(global, import_input, import_force); },
                     [&](CLI::App& c) {
                       c.add_option("FILE", import_input, "The exported identity ('-' or none: stdin)");
                       c.add_flag("--force", import_force,
                                  "Replace a different existing identity (it is kept aside)");
                     });
               });

  std::string link_label;
  std::string link_uuid;
  dispatch.add(
      app, "link", "Play from this new device as your account, with its own key",
      "  game link                 on the new device: prints a command for the old one\n"
      "  game key add --label laptop 'ssh-ed25519 AAAA...'   that command, on the old device\n"
      "  game --server HOST:PORT --host-key SHA256:... link --uuid UUID   then this, printed "
      "by it\n",
      [&] { return game::run_link(global, link_label, link_uuid); },
      [&](CLI::App& c) {
        c.add_option("--label", link_label, "A name for this device's key (default: the host name)");
        c.add_option("--uuid", link_uuid, "The account to join, as `game key add` printed it");
      });

  bool key_list_json = false;
  std::string key_add_line;
  std::string key_add_label = "device";
  std::string key_remove_fingerprint;
  std::string key_rotate_label;
  dispatch.add(
      app, "key", "List, add, remove or rotate your account's keys (protocol 2 servers)",
      "  game key list\n"
      "  game key remove SHA256:...\n"
      "  game key rotate\n",
      nullptr, [&](CLI::App& key) {
        key.require_subcommand(1);
        dispatch.add(
            key, "list", "Show the account's keys, labels and fingerprints",
            "  game key list\n"
            "  game key list --json | jq -r '.keys[].fingerprint'\n",
            [&] { return game::run_key_list(global, key_list_json); },
            [&](CLI::App& c) {
              c.add_flag("--json", key_list_json, "Print one JSON object (docs/keys.md)");
            });
        dispatch.add(
            key, "add", "Add another device's public key (as `game link` prints it)",
            "  game key add --label laptop 'ssh-ed25519 AAAA...'\n",
            [&] { return game::run_key_add(global, key_add_line, key_add_label); },
            [&](CLI::App& c) {
              c.add_option("PUBLIC_KEY", key_add_line, "'TYPE BASE64', as in a .pub file")->required();
              c.add_option("--label", key_add_label, "A name for the key")->capture_default_str();
            });
        dispatch.add(
            key, "remove", "Revoke a key (a lost device's): the server refuses it from then on",
            "  game key remove SHA256:uWq2...\n",
            [&] { return game::run_key_remove(global, key_remove_fingerprint); },
            [&](CLI::App& c) {
              c.add_option("FINGERPRINT", key_remove_fingerprint, "SHA256:..., as `game key list` shows it")
                  ->required();
            });
        dispatch.add(
            key, "rotate", "Replace this device's key: add a new one, switch to it, remove the old one",
            "  game key rotate\n"
            "  game key rotate --label laptop-2027\n",
            [&] { return game::run_key_rotate(global, key_rotate_label); },
            [&](CLI::App& c) {
              c.add_option("--label", key_rotate_label, "A name for the new key (default: the host name)");
            });
      });
  dispatch.finish();

  app.footer(std::string(kExamples) + "\n" + kExitCodes);

  if (argc == 1) {  // like `git` alone: the usage, and a failure status for scripts
    std::fputs(app.help().c_str(), stderr);
    return static_cast<int>(Exit::kUsage);
  }
  if (auto checked = check_words(app, argc, argv); !checked) return exit_code(checked.error());
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return parse_error(app, e);
  }
  if (auto applied = apply_environment(app, global); !applied) return exit_code(applied.error());
  const Handler* run = dispatch.chosen();
  if (run == nullptr) return exit_code(game::make_error(Exit::kUsage, "no command given (see 'game help')"));
  return exit_code((*run)());
}
