#include "commands.h"

#include <openssl/opensslv.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "batch.h"
#include "batch_report.h"
#include "config_store.h"
#include "connect.h"
#include "fs.h"
#include "hostkey.h"
#include "identity.h"
#include "journal.h"
#include "progress.h"
#include "protocol.h"
#include "session.h"
#include "signals.h"
#include "suggest.h"
#include "text.h"
#include "transport.h"
#include "version.h"

namespace game {
namespace {

// A bare word close to a configured server's name is taken for a typo of it, not for a host:
// `--server arnea` says "did you mean arena?" instead of failing to resolve "arnea".
Status check_server_typo(const Config& config, const std::string& name) {
  if (name.find_first_of(".:[") != std::string::npos || name == "localhost") return {};
  std::vector<std::string> names;
  for (const ServerConfig& server : config.servers) names.push_back(server.name);
  const std::string hint = did_you_mean(name, names);
  if (hint.empty()) return {};
  return make_error(Exit::kUsage, "no server '" + name + "' in " + config.path + hint +
                                      " (for a host of that name, give " + name + ":PORT)");
}

}  // namespace

Result<ServerConfig> select_server(const Config& config, const std::string& flag) {
  const std::string& name = flag.empty() ? config.default_server : flag;
  if (name.empty()) {
    return make_error(Exit::kUsage,
                      "no server given: use --server HOST[:PORT] or GAME_SERVER (the first server "
                      "whose host key is recorded becomes the default) or set default_server in " +
                          config.path);
  }
  if (const ServerConfig* known = config.find_server(name)) return *known;
  GAME_TRY(check_server_typo(config, name));
  auto endpoint = parse_endpoint(name, 9022);
  if (!endpoint) return std::move(endpoint).error();
  // HOST[:PORT] on the command line: remembered under its canonical host:port name.
  if (const ServerConfig* known = config.find_server(endpoint->display())) return *known;
  ServerConfig server;
  server.name = endpoint->display();
  server.addresses = {endpoint->host};
  server.port = endpoint->port;
  return server;
}

Status check_options(const GlobalOptions& options) {
  // Below a millisecond would round to 0, which libssh reads as "its own default".
  if (!(options.timeout >= 0.001) || options.timeout > 86400) {
    return make_error(Exit::kUsage, "--timeout must be a number of seconds from 0.001 to 86400");
  }
  if (!options.host_key.empty() && !text::is_fingerprint(options.host_key)) {
    return make_error(Exit::kUsage, "--host-key '" + text::printable(options.host_key) +
                                        "' is not a fingerprint: it must be SHA256: and 43 base64 digits, "
                                        "as ssh-keygen -lf prints");
  }
  return {};
}

std::chrono::milliseconds timeout_of(const GlobalOptions& options) {
  return std::chrono::milliseconds(static_cast<long long>(std::ceil(options.timeout * 1000)));
}

// Output that cannot be written is a failure, not a success with an empty file behind it.
Status flush_stdout() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    return make_error(Exit::kIoErr, std::string("cannot write to standard output: ") + std::strerror(errno));
  }
  return {};
}

std::chrono::milliseconds reconnect_window(const GlobalOptions& options) { return 3 * timeout_of(options); }

namespace {

// The account named by --config / $GAME_CONFIG / ~/.gameconfig, created on first use.
Result<Account> account_for(const GlobalOptions& options, Trace& trace) {
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  return open_account(*path, timeout_of(options), trace);
}

// Where a run went: what a printed resume command must name to reach the same place.
struct Target {
  std::string config_path;
  std::string server;  // the config's server name, or HOST:PORT
};

// command line -> identity -> session: everything between the encoded requests and their outcomes.
// `stop` is armed only once the session starts: until then nothing has been sent, and a signal
// ends the client as it would any program.
// `starting` runs once the target is known, before connecting (the journal's first write).
Status deliver(const GlobalOptions& options, RequestSource& source, Observer& observer, Trace& trace,
               Tally& tally, StopRequests& stop, Target& target,
               const std::function<Status(const Target&)>& starting = nullptr,
               const std::string& stream_hex = {}) {
  auto account = account_for(options, trace);
  if (!account) return std::move(account).error();
  auto server = select_server(account->config, options.server);
  if (!server) return std::move(server).error();
  // Absolute, so that a resume command or a journal entry means the same file from any directory.
  auto absolute = fs::absolute_path(account->config.path);
  target = Target{absolute ? *absolute : account->config.path, server->name};
  if (starting) GAME_TRY(starting(target));

  SessionOptions session;
  session.timeout = timeout_of(options);
  session.reconnect_for = reconnect_window(options);
  session.acks = server->acks;
  // A journaled batch names its stream, so that a resumed run continues the same one (the server's
  // opened{lastSeq} then tells what it already holds); any other unit of work gets a new one.
  if (const auto bytes = text::from_hex(stream_hex); bytes && bytes->size() == session.stream.size()) {
    std::copy(bytes->begin(), bytes->end(), session.stream.begin());
  } else {
    auto stream = new_stream_id();
    if (!stream) return std::move(stream).error();
    session.stream = *stream;
  }

  ServerConnector connector(*server, *account, options.host_key, timeout_of(options));
  auto channel = connector.connect(trace);
  if (!channel) return std::move(channel).error();
  session.protocol = connector.protocol();
  session.stop = &stop;
  GAME_TRY(stop.arm());
  return run_session(std::move(*channel), connector, source, observer, session, trace, tally);
}

class OneRequest : public RequestSource {
 public:
  explicit OneRequest(protocol::Request request) : request_(std::move(request)) {}
  Result<Next> next(Outgoing& out) override {
    if (taken_) return Next::kEnd;
    taken_ = true;
    out.request = request_;
    out.line = 1;
    return Next::kReady;
  }

 private:
  protocol::Request request_;
  bool taken_ = false;
};

class CommandReport : public Observer {
 public:
  explicit CommandReport(Trace& trace) : trace_(trace) {}
  void on_outcome(std::uint64_t, Outcome outcome, const std::string& reason) override {
    outcome_ = outcome;
    if (outcome == Outcome::kRejected) {
      std::fprintf(stderr, "game: rejected by the server: %s\n", text::printable(reason).c_str());
    } else if (outcome == Outcome::kAccepted) {
      trace_.step("accepted");
    } else if (outcome == Outcome::kDuplicate) {
      trace_.step("already applied (an earlier send of this request was accepted)");
    } else if (outcome == Outcome::kDelivered) {
      trace_.step("delivered, not acknowledged (the server does not send acknowledgements)");
    }
  }
  std::optional<Outcome> outcome() const { return outcome_; }

 private:
  Trace& trace_;
  std::optional<Outcome> outcome_;
};

// One short line for a player at a terminal: "score 789 accepted by arena". Scripts (stdout not
// a terminal) and --quiet get nothing, as from git.
void confirm_on_terminal(const GlobalOptions& options, const std::string& what, const std::string& server,
                         std::optional<Outcome> outcome) {
  if (options.quiet || !outcome || ::isatty(STDOUT_FILENO) != 1) return;
  if (outcome == Outcome::kAccepted) {
    std::printf("%s accepted by %s\n", what.c_str(), server.c_str());
  } else if (outcome == Outcome::kDelivered) {
    std::printf("%s sent to %s (it does not acknowledge)\n", what.c_str(), server.c_str());
  }
}

// `what` names the request in the confirmation line ("score 789").
Result<Exit> run_one(const GlobalOptions& options, Result<protocol::Request> request,
                     const std::string& what) {
  GAME_TRY(check_options(options));
  if (!request) return make_error(Exit::kUsage, std::move(request).error().message);
  if (options.dry_run) {
    std::string pdu;
    protocol::encode(*request, pdu);
    std::printf("%s\n", text::to_hex(pdu).c_str());
    return Exit::kOk;
  }
  Trace trace(options.verbose);
  OneRequest source(std::move(*request));
  CommandReport report(trace);
  Tally tally;
  StopRequests stop;
  Target target;
  Status status = deliver(options, source, report, trace, tally, stop, target);
  if (!status) {
    Error error = std::move(status).error();
    if (tally.not_delivered > 0) error.message += " (it may or may not have been recorded)";
    return error;
  }
  confirm_on_terminal(options, what, text::printable(target.server), report.outcome());
  return tally.rejected > 0 ? Exit::kRejected : Exit::kOk;
}

// Standard input on a terminal: a blank screen waiting for input looks hung, so say what it wants.
void hint_if_terminal(const GlobalOptions& options, const char* hint) {
  if (!options.quiet && ::isatty(STDIN_FILENO) == 1) std::fprintf(stderr, "game: %s\n", hint);
}

}  // namespace

Result<Exit> run_setname(const GlobalOptions& options, const std::string& name) {
  return run_one(options, protocol::make_set_username(name), "name " + text::printable(name));
}

Result<Exit> run_score(const GlobalOptions& options, const std::string& value) {
  return run_one(options, protocol::make_add_score(value), "score " + text::printable(value));
}

namespace {

nlohmann::json server_json(const ServerConfig& server, bool is_default) {
  nlohmann::json addresses = nlohmann::json::array();
  for (const std::string& address : server.addresses) {
    auto endpoint = parse_endpoint(address, server.port);
    addresses.push_back(endpoint ? endpoint->display() : address);
  }
  nlohmann::json object = {{"name", server.name}, {"default", is_default}, {"addresses", addresses}};
  object["host_key"] = server.host_key.empty() ? nlohmann::json(nullptr) : nlohmann::json(server.host_key);
  object["host_keys"] = nlohmann::json::object();
  for (const auto& [node, key] : server.node_keys) object["host_keys"][node] = key;
  // 1 or 2 as recorded at the last contact; null before the first one.
  object["protocol"] = server.protocol == 0 ? nlohmann::json(nullptr) : nlohmann::json(server.protocol);
  return object;
}

void print_whoami_json(const Account& account) {
  const Identity& id = account.identity;
  nlohmann::json servers = nlohmann::json::array();
  for (const ServerConfig& server : account.config.servers) {
    servers.push_back(server_json(server, server.name == account.config.default_server));
  }
  const nlohmann::json object = {{"uuid", id.uuid},
                                 {"fingerprint", id.fingerprint()},
                                 {"public_key", id.public_line},
                                 {"config", account.config.path},
                                 {"key", id.key_path},
                                 {"servers", servers}};
  std::printf("%s\n", object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void print_whoami_text(const Account& account) {
  const Identity& id = account.identity;
  std::printf("uuid:        %s\nfingerprint: %s\npublic key:  %s\nconfig:      %s\nkey:         %s\n",
              id.uuid.c_str(), id.fingerprint().c_str(), id.public_line.c_str(), account.config.path.c_str(),
              id.key_path.c_str());
  for (const ServerConfig& server : account.config.servers) {
    const bool is_default = server.name == account.config.default_server;
    std::printf("server:      %s%s %s\n", server.name.c_str(), is_default ? " (default)" : "",
                server.host_key.empty() ? "(host key not yet known)" : server.host_key.c_str());
  }
}

}  // namespace

Result<Account> existing_account(const GlobalOptions& options, const std::string& purpose, Trace& trace) {
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  if (!fs::exists(*path)) {
    return make_error(Exit::kConfig, "no identity yet: " + *path + " does not exist (" + purpose + ")");
  }
  return open_account(*path, timeout_of(options), trace);
}

Result<Exit> run_whoami(const GlobalOptions& options, bool json) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto account =
      existing_account(options, "`game init` creates one, as does the first command sent to a server", trace);
  if (!account) return std::move(account).error();
  if (json) {
    print_whoami_json(*account);
  } else {
    print_whoami_text(*account);
  }
  GAME_TRY(flush_stdout());
  return Exit::kOk;
}

namespace {

// The command that continues an interrupted batch, for a shell: pasted as printed, in any
// directory, it reaches the same server with the same config and file (all named explicitly or
// absolutely, so that neither the default server, $GAME_CONFIG nor the directory can change them).
// `file` is the journal's absolute path, so it never starts with '-'.
std::string resume_command(const GlobalOptions& options, const Target& target, const std::string& file) {
  std::string command = "game --config " + text::shell_quote(target.config_path) + " --server " +
                        text::shell_quote(target.server);
  if (!options.host_key.empty()) command += " --host-key " + text::shell_quote(options.host_key);
  if (options.timeout != GlobalOptions{}.timeout) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", options.timeout);
    command += std::string(" --timeout ") + seconds;
  }
  return command + " batch --resume " + text::shell_quote(file);
}

// Asks on the controlling terminal (every prompt of the client): the first character of the
// answer, or 0 for none; an error when there is no terminal, so a script never waits on one.
Result<char> ask(const std::string& question) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> tty(std::fopen("/dev/tty", "r+e"), &std::fclose);
  if (!tty) return make_error(Exit::kUsage, "no terminal to ask on");
  std::fprintf(tty.get(), "%s ", question.c_str());
  std::fflush(tty.get());
  char answer[16] = {0};
  return std::fgets(answer, sizeof answer, tty.get()) != nullptr ? answer[0] : '\0';
}

enum class Continue { kResume, kNew };

// `game batch FILE` when FILE has an unfinished submission: never a second one silently. On a
// terminal the user chooses; in a script the run stops naming --resume and --new.
Result<Continue> choose(const GlobalOptions& options, const std::string& file, const Submission& pending) {
  const std::string what =
      file + " has an unfinished submission to " + pending.server + " (" +
      (pending.confirmed == 0 ? std::string("no line confirmed yet")
                              : "lines up to " + std::to_string(pending.confirmed) + " confirmed") +
      ")";
  const std::string resume = resume_command(options, Target{pending.config, pending.server}, pending.file);
  if (::isatty(STDIN_FILENO) == 1) {
    auto answer =
        ask(what + ".\n[r]esume it, start a [n]ew one (lines may be recorded twice), or [a]bort? [r/n/A]");
    if (answer && (*answer == 'r' || *answer == 'R')) return Continue::kResume;
    if (answer && (*answer == 'n' || *answer == 'N')) return Continue::kNew;
  }
  return make_error(Exit::kUsage, what + ": continue it with --resume (" + resume +
                                      ") or start over with --new; nothing was sent");
}

Status check_batch_options(const BatchOptions& batch) {
  if (batch.from_line < 1) return make_error(Exit::kUsage, "--from-line must be 1 or more");
  if (batch.resume && batch.fresh) return make_error(Exit::kUsage, "--resume and --new exclude each other");
  if ((batch.resume || batch.fresh) && (batch.follow || batch.file == "-")) {
    return make_error(Exit::kUsage,
                      "--resume and --new apply to a batch FILE (standard input is not journaled)");
  }
  if (batch.resume && batch.from_line != 1) {
    return make_error(Exit::kUsage, "--resume starts where the server stopped confirming: no --from-line");
  }
  if (batch.follow && batch.file != "-")
    return make_error(Exit::kUsage, "--follow reads standard input: give no FILE or '-'");
  if (batch.follow && batch.from_line != 1)
    return make_error(Exit::kUsage, "--from-line does not apply to --follow");
  return {};
}

Result<Exit> print_dry_run(RequestSource& source) {
  Outgoing out;
  for (;;) {
    auto next = source.next(out);
    if (!next) return std::move(next).error();
    if (*next == RequestSource::Next::kEnd) return Exit::kOk;
    if (*next == RequestSource::Next::kReady) {
      std::string pdu;
      protocol::encode(std::get<protocol::Request>(out.request), pdu);
      std::printf("%s\n", text::to_hex(pdu).c_str());
    }
  }
}

// The journal entry this run continues or starts, after checking that a resumed one matches.
struct Journaled {
  Journal journal;
  Submission submission;
  bool resumed = false;
};

Result<Journaled> open_submission(GlobalOptions& options, BatchOptions& batch) {
  auto absolute = fs::absolute_path(batch.file);
  if (!absolute) return std::move(absolute).error();
  auto identity = identify_file(*absolute);
  if (!identity) return std::move(identity).error();
  auto journal = Journal::open();
  if (!journal) return std::move(journal).error();
  auto found = journal->find(*absolute);
  if (!found) return std::move(found).error();
  bool resume = batch.resume;
  if (*found && !batch.resume && !batch.fresh && batch.from_line == 1) {
    auto choice = choose(options, batch.file, **found);
    if (!choice) return std::move(choice).error();
    resume = *choice == Continue::kResume;
  }
  if (!resume) {
    // --new, or --from-line N (the user says where to start): the old entry is dropped.
    auto stream = new_stream_id();
    if (!stream) return std::move(stream).error();
    const std::string hex =
        text::to_hex(std::string_view(reinterpret_cast<const char*>(stream->data()), stream->size()));
    Submission fresh{hex, *absolute, *identity, {}, {}, batch.from_line - 1};
    return Journaled{std::move(*journal), std::move(fresh), false};
  }
  if (!*found) {
    return make_error(Exit::kUsage, "no unfinished submission of " + batch.file + " to resume (" +
                                        journal->entry_path(*absolute) + " does not exist)");
  }
  Submission pending = std::move(**found);
  if (pending.identity != *identity) {
    return make_error(Exit::kDataErr, batch.file +
                                          " changed since its interrupted submission (size, time or "
                                          "inode differ): resuming could skip or repeat lines; use --new");
  }
  if (!options.server.empty() && options.server != pending.server) {
    return make_error(Exit::kUsage, "the unfinished submission of " + batch.file + " went to " +
                                        pending.server + ", not " + options.server);
  }
  if (options.server.empty()) options.server = pending.server;
  if (options.config.empty()) options.config = pending.config;
  batch.from_line = pending.confirmed + 1;
  return Journaled{std::move(*journal), std::move(pending), true};
}

// --from-line's value: a line number from 1, in decimal (CLI11 would wrap -1 around and read
// 010 as octal).
Result<std::uint64_t> parse_from_line(const std::string& text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 1) {
    return make_error(Exit::kUsage, "--from-line '" + text::printable(text) +
                                        "' is not a line number: it must be a whole number from 1 to " +
                                        std::to_string(UINT64_MAX));
  }
  return value;
}

// deliver(), with a progress line on stderr when that is a terminal (and not --quiet); the line
// is gone when this returns, before the summary and any error are printed.
Status deliver_batch(const GlobalOptions& options, RequestSource& source, std::optional<std::uint64_t> total,
                     Observer& report, Trace& trace, Tally& tally, StopRequests& stop, Target& target,
                     const std::function<Status(const Target&)>& starting, const std::string& stream_hex) {
  if (options.quiet || ::isatty(STDERR_FILENO) != 1) {
    return deliver(options, source, report, trace, tally, stop, target, starting, stream_hex);
  }
  ProgressLine line(STDERR_FILENO, total);
  ProgressSource counted(source, line);
  ProgressObserver observed(report, line);
  return deliver(options, counted, observed, trace, tally, stop, target, starting, stream_hex);
}

}  // namespace

Result<Exit> run_batch(const GlobalOptions& given_options, const BatchOptions& given_batch) {
  GlobalOptions options = given_options;
  BatchOptions batch = given_batch;
  GAME_TRY(check_options(options));
  auto from_line = parse_from_line(batch.from_line_text);
  if (!from_line) return std::move(from_line).error();
  batch.from_line = *from_line;
  GAME_TRY(check_batch_options(batch));
  Trace trace(options.verbose);
  std::unique_ptr<RequestSource> source;
  std::string name = batch.file == "-" ? "stdin" : batch.file;
  StopRequests stop;
  BatchReport report(name, batch.json, stop);
  std::optional<std::uint64_t> total;  // requests in the batch, when known before sending
  if (batch.file == "-" && !options.dry_run) {
    hint_if_terminal(options, batch.follow ? "sending lines from the terminal as you type them; Ctrl-D ends"
                                           : "reading batch lines from the terminal; Ctrl-D ends, then they "
                                             "are sent (or give a FILE)");
  }
  std::optional<Journaled> journaled;
  if (batch.follow) {
    source = std::make_unique<FollowBatch>(STDIN_FILENO, report);
  } else {
    // Standard input has no identity to journal; --dry-run sends nothing.
    if (batch.file != "-" && !options.dry_run) {
      auto opened = open_submission(options, batch);
      if (!opened) return std::move(opened).error();
      journaled = std::move(*opened);
      if (journaled->resumed) trace.step("resuming after line " + std::to_string(batch.from_line - 1));
    }
    auto file = FileBatch::open(batch.file, batch.from_line);
    if (!file) return std::move(file).error();
    if (Status valid = (*file)->validate(report); !valid) {
      // --json promises a summary record however the run ends; the text summary would only
      // repeat the error.
      if (batch.json) (void)report.summary(Tally{}, report.invalid_lines(), &valid.error(), "");
      return std::move(valid).error();
    }
    trace.step("validated " + name);
    total = (*file)->requests();
    source = std::move(*file);
  }
  if (options.dry_run) return print_dry_run(*source);

  Tally tally;
  Target target;
  std::optional<JournalProgress> progress;
  Observer* observer = &report;
  std::function<Status(const Target&)> starting;
  if (journaled) {
    progress.emplace(journaled->journal, journaled->submission, report, stop);
    observer = &*progress;
    starting = [&](const Target& resolved) {
      if (journaled->resumed && resolved.config_path != journaled->submission.config) {
        return Status(make_error(Exit::kUsage, "the unfinished submission of " + batch.file + " used " +
                                                   journaled->submission.config + ", not " +
                                                   resolved.config_path));
      }
      return progress->start(resolved.config_path, resolved.server);
    };
  }
  const Status status = deliver_batch(options, *source, total, *observer, trace, tally, stop, target,
                                      starting, journaled ? journaled->submission.stream : std::string());
  const std::uint64_t invalid = report.invalid_lines();
  const auto first = status ? std::nullopt : report.first_not_delivered();
  std::string resume;
  if (journaled && progress->submission().server.empty()) {
    // Stopped before the journal's first write (config or server not resolved): nothing sent.
  } else if (journaled) {
    Status kept = status || (tally.sent == 0 && !journaled->resumed)
                      ? journaled->journal.remove(journaled->submission.file)
                      : progress->save();
    if (!kept) std::fprintf(stderr, "game: %s\n", kept.error().message.c_str());
    if (!status && tally.sent + journaled->submission.confirmed > 0) {
      resume = resume_command(options, target, journaled->submission.file);
    }
  }
  const Status printed = report.summary(tally, invalid, status ? nullptr : &status.error(), resume);
  if (!status) {
    Error error = status.error();
    if (first) error.message += "; first unacknowledged line: " + name + ":" + std::to_string(*first);
    if (!resume.empty()) {
      error.message += "; resume with: " + resume;
    } else if (first && !batch.follow) {
      error.message += "; standard input cannot be resumed: send its lines from " + std::to_string(*first) +
                       " on again (tail -n +" + std::to_string(*first) + ")";
    }
    return error;
  }
  if (!printed) return printed.error();
  if (tally.rejected > 0) return Exit::kRejected;
  return invalid > 0 ? Exit::kDataErr : Exit::kOk;
}

namespace {

Status write_output(const std::string& output, const std::string& text) {
  if (output.empty() || output == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return flush_stdout();
  }
  return fs::create_file_exclusive(output, text, 0600);
}

}  // namespace

Result<Exit> run_init(const GlobalOptions& options, const std::string& adopt_key) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  auto account = init_account(*path, adopt_key, timeout_of(options), trace);
  if (!account) return std::move(account).error();
  std::printf("created identity %s in %s\nkey: %s (%s)\n", account->identity.uuid.c_str(), path->c_str(),
              account->identity.key_path.c_str(), account->identity.fingerprint().c_str());
  GAME_TRY(flush_stdout());
  return Exit::kOk;
}

Result<Exit> run_trust(const GlobalOptions& options, const std::string& server_name, bool yes) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto account = account_for(options, trace);
  if (!account) return std::move(account).error();
  const std::string& path = account->config.path;
  auto server = select_server(account->config, server_name.empty() ? options.server : server_name);
  if (!server) return std::move(server).error();
  auto connected = connect_any(*server, account->identity.uuid, timeout_of(options), trace);
  if (!connected) return std::move(connected).error();
  auto offered = connected->connection.host_key_fingerprint();
  if (!offered) return std::move(offered).error();
  const std::string known = expected_host_key(*server, connected->endpoint);
  std::printf("%s (%s) presents host key %s\n", server->name.c_str(), connected->endpoint.c_str(),
              offered->c_str());
  if (known == *offered) {
    std::printf("already trusted\n");
    return Exit::kOk;
  }
  if (!known.empty()) std::printf("it REPLACES the recorded key %s\n", known.c_str());
  // --host-key is the fingerprint the player got out of band: pin exactly that one, unasked.
  if (!options.host_key.empty() && options.host_key != *offered) {
    return make_error(Exit::kNoPerm, "the server presents " + *offered + ", not the --host-key " +
                                         options.host_key + "; nothing recorded");
  }
  if (!yes && options.host_key.empty()) {
    auto answer = ask("Trust this host key? [y/N]");
    if (!answer) return make_error(Exit::kUsage, "no terminal to confirm on: use --yes");
    if (*answer != 'y' && *answer != 'Y')
      return make_error(Exit::kNoPerm, "host key not trusted; nothing recorded");
  }
  GAME_TRY(record_host_key(path, *server, connected->endpoint, *offered, HostKeyRecord::kReplace,
                           !options.host_key.empty(), timeout_of(options)));
  std::printf("recorded in %s\n", path.c_str());
  GAME_TRY(flush_stdout());
  return Exit::kOk;
}

Result<Exit> run_identity_export(const GlobalOptions& options, const std::string& output) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto account = existing_account(options, "there is nothing to export", trace);
  if (!account) return std::move(account).error();
  auto text = export_identity(*account);
  if (!text) return std::move(text).error();
  GAME_TRY(write_output(output, *text));
  return Exit::kOk;
}

Result<Exit> run_identity_import(const GlobalOptions& options, const std::string& input, bool force) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  std::optional<std::string> text;
  if (input.empty() || input == "-") {
    hint_if_terminal(options, "paste the exported identity, then press Ctrl-D (or give a FILE)");
    text = std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    auto read = fs::read_file(input);
    if (!read) return std::move(read).error();
    if (!*read) return make_error(Exit::kNoInput, "cannot open " + input);
    text = std::move(*read);
  }
  auto result = import_identity(*path, *text, force, timeout_of(options), trace);
  if (!result) return std::move(result).error();
  std::fprintf(stderr, "game: %s\n", result->c_str());
  return Exit::kOk;
}

std::string version_text() {
  return std::string("game ") + GAME_VERSION + " (libssh " + SSH_STRINGIFY(LIBSSH_VERSION) + ", " +
         OPENSSL_VERSION_TEXT + ")";
}

}  // namespace game
