#include "commands.h"

#include <openssl/opensslv.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <random>

#include "batch.h"
#include "connect.h"
#include "fs.h"
#include "hostkey.h"
#include "identity.h"
#include "protocol.h"
#include "session.h"
#include "text.h"
#include "transport.h"
#include "version.h"

namespace game {
namespace {

Result<ServerConfig> select_server(const Config& config, const std::string& flag) {
  const std::string& name = flag.empty() ? config.default_server : flag;
  if (name.empty()) {
    return make_error(Exit::kUsage,
                      "no server given: use --server HOST[:PORT] (the first server you "
                      "use becomes the default) or set default_server in " +
                          config.path);
  }
  if (const ServerConfig* known = config.find_server(name)) return *known;
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
  if (!(options.timeout > 0) || options.timeout > 86400) {
    return make_error(Exit::kUsage, "--timeout must be a number of seconds above 0 (and at most 86400)");
  }
  if (!options.host_key.empty() && options.host_key.rfind("SHA256:", 0) != 0) {
    return make_error(Exit::kUsage,
                      "--host-key must be a fingerprint like SHA256:... (as ssh-keygen -lf prints)");
  }
  return {};
}

std::chrono::milliseconds timeout_of(const GlobalOptions& options) {
  return std::chrono::milliseconds(static_cast<long long>(options.timeout * 1000));
}

// The account named by --config / $GAME_CONFIG / ~/.gameconfig, created on first use.
Result<Account> account_for(const GlobalOptions& options, Trace& trace) {
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  return open_account(*path, trace);
}

std::chrono::milliseconds reconnect_window(const GlobalOptions& options) { return 3 * timeout_of(options); }

// command line -> identity -> session: everything between the requests and their outcomes.
Status deliver(const GlobalOptions& options, RequestSource& source, Observer& observer, Trace& trace,
               Tally& tally) {
  auto account = account_for(options, trace);
  if (!account) return std::move(account).error();
  auto server = select_server(account->config, options.server);
  if (!server) return std::move(server).error();

  SessionOptions session;
  session.timeout = timeout_of(options);
  session.reconnect_for = reconnect_window(options);
  session.acks = server->acks;
  auto stream = new_stream_id();
  if (!stream) return std::move(stream).error();
  session.stream = *stream;

  ServerConnector connector(*server, *account, options.host_key, timeout_of(options));
  auto channel = connector.connect(trace);
  if (!channel) return std::move(channel).error();
  session.protocol = connector.protocol();
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

 private:
  Trace& trace_;
};

Result<Exit> run_one(const GlobalOptions& options, Result<protocol::Request> request) {
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
  GAME_TRY(deliver(options, source, report, trace, tally));
  return tally.rejected > 0 ? Exit::kRejected : Exit::kOk;
}

}  // namespace

Result<Exit> run_setname(const GlobalOptions& options, const std::string& name) {
  return run_one(options, protocol::make_set_username(name));
}

Result<Exit> run_score(const GlobalOptions& options, const std::string& value) {
  return run_one(options, protocol::make_add_score(value));
}

Result<Exit> run_whoami(const GlobalOptions& options) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto account = account_for(options, trace);
  if (!account) return std::move(account).error();
  const std::string& path = account->config.path;
  const Identity& id = account->identity;
  std::printf("uuid:        %s\nfingerprint: %s\npublic key:  %s\nconfig:      %s\nkey:         %s\n",
              id.uuid.c_str(), id.fingerprint.c_str(), id.public_line.c_str(), path.c_str(),
              id.key_path.c_str());
  for (const ServerConfig& server : account->config.servers) {
    const bool is_default = server.name == account->config.default_server;
    std::printf("server:      %s%s %s\n", server.name.c_str(), is_default ? " (default)" : "",
                server.host_key.empty() ? "(host key not yet known)" : server.host_key.c_str());
  }
  return Exit::kOk;
}

Result<Exit> run_batch(const GlobalOptions& options, const BatchOptions& batch) {
  GAME_TRY(check_options(options));
  if (batch.from_line < 1) return make_error(Exit::kUsage, "--from-line must be 1 or more");
  Trace trace(options.verbose);
  std::unique_ptr<RequestSource> source;
  std::string name = batch.file == "-" ? "stdin" : batch.file;
  const FollowBatch* follow = nullptr;
  if (batch.follow) {
    if (batch.file != "-")
      return make_error(Exit::kUsage, "--follow reads standard input: give no FILE or '-'");
    if (batch.from_line != 1) return make_error(Exit::kUsage, "--from-line does not apply to --follow");
    auto owned = std::make_unique<FollowBatch>(STDIN_FILENO);
    follow = owned.get();
    source = std::move(owned);
  } else {
    auto file = FileBatch::open(batch.file, batch.from_line);
    if (!file) return std::move(file).error();
    GAME_TRY((*file)->validate());
    trace.step("validated " + name);
    source = std::move(*file);
  }
  if (options.dry_run) {
    Outgoing out;
    for (;;) {
      auto next = source->next(out);
      if (!next) return std::move(next).error();
      if (*next == RequestSource::Next::kEnd) return Exit::kOk;
      if (*next == RequestSource::Next::kReady) {
        std::string pdu;
        protocol::encode(std::get<protocol::Request>(out.request), pdu);
        std::printf("%s\n", text::to_hex(pdu).c_str());
      }
    }
  }
  BatchReport report(name, batch.json);
  Tally tally;
  const Status status = deliver(options, *source, report, trace, tally);
  const std::uint64_t invalid = follow ? follow->invalid_lines() : 0;
  report.summary(tally, invalid, status ? nullptr : &status.error());
  if (!status) {
    Error error = status.error();
    if (const auto first = report.first_not_delivered()) {
      error.message += "; first unacknowledged line: " + name + ":" + std::to_string(*first);
      if (!batch.follow) {
        error.message += "; resume with: game batch --from-line " + std::to_string(*first) + " " +
                         (batch.file == "-" ? "FILE" : batch.file);
      }
    }
    return error;
  }
  if (tally.rejected > 0) return Exit::kRejected;
  return invalid > 0 ? Exit::kDataErr : Exit::kOk;
}

namespace {

// Asks a yes/no question on the terminal; scripts without one must say --yes.
Result<bool> confirm(const std::string& question) {
  std::FILE* tty = std::fopen("/dev/tty", "r+e");
  if (tty == nullptr) return make_error(Exit::kUsage, "no terminal to confirm on: use --yes");
  std::fprintf(tty, "%s [y/N] ", question.c_str());
  std::fflush(tty);
  char answer[16] = {0};
  const bool got = std::fgets(answer, sizeof answer, tty) != nullptr;
  std::fclose(tty);
  return got && (answer[0] == 'y' || answer[0] == 'Y');
}

Status write_output(const std::string& output, const std::string& text) {
  if (output.empty() || output == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return {};
  }
  return fs::create_file_exclusive(output, text, 0600);
}

}  // namespace

Result<Exit> run_init(const GlobalOptions& options, const std::string& adopt_key) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  auto account = init_account(*path, adopt_key, trace);
  if (!account) return std::move(account).error();
  std::printf("created identity %s in %s\nkey: %s (%s)\n", account->identity.uuid.c_str(), path->c_str(),
              account->identity.key_path.c_str(), account->identity.fingerprint.c_str());
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
  if (!yes) {
    auto answer = confirm("Trust this host key?");
    if (!answer) return std::move(answer).error();
    if (!*answer) return make_error(Exit::kNoPerm, "host key not trusted; nothing recorded");
  }
  GAME_TRY(pin_host_key(*offered, *server, path, connected->endpoint));
  std::printf("recorded in %s\n", path.c_str());
  return Exit::kOk;
}

Result<Exit> run_identity_export(const GlobalOptions& options, const std::string& output) {
  Trace trace(options.verbose);
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  if (!fs::exists(*path))
    return make_error(Exit::kConfig, *path + " does not exist: there is no identity to export");
  auto account = open_account(*path, trace);
  if (!account) return std::move(account).error();
  auto text = export_identity(*account);
  if (!text) return std::move(text).error();
  GAME_TRY(write_output(output, *text));
  return Exit::kOk;
}

Result<Exit> run_identity_import(const GlobalOptions& options, const std::string& input, bool force) {
  Trace trace(options.verbose);
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  std::optional<std::string> text;
  if (input.empty() || input == "-") {
    text = std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    auto read = fs::read_file(input);
    if (!read) return std::move(read).error();
    if (!*read) return make_error(Exit::kNoInput, "cannot open " + input);
    text = std::move(*read);
  }
  auto result = import_identity(*path, *text, force, trace);
  if (!result) return std::move(result).error();
  std::fprintf(stderr, "game: %s\n", result->c_str());
  return Exit::kOk;
}

std::string version_text() {
  return std::string("game ") + GAME_VERSION + " (libssh " + SSH_STRINGIFY(LIBSSH_VERSION) + ", " +
         OPENSSL_VERSION_TEXT + ")";
}

}  // namespace game
