#include "keys.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "config_store.h"
#include "connect.h"
#include "fs.h"
#include "hostkey.h"
#include "identity.h"
#include "protocol.h"
#include "public_key.h"
#include "session.h"
#include "signals.h"
#include "text.h"

namespace game {
namespace {

// ---- one unit of account requests -------------------------------------------------------------

// A request made when the session first asks for it, after the server has shown that it speaks
// protocol 2 and knows the key: nothing local is made for a server that cannot take it.
using MakeRequest = std::function<Result<protocol::AccountRequest>()>;

MakeRequest just(protocol::AccountRequest request) {
  return [request = std::move(request)]() -> Result<protocol::AccountRequest> { return request; };
}

class AccountRequests : public RequestSource {
 public:
  explicit AccountRequests(std::vector<MakeRequest> requests) : requests_(std::move(requests)) {}
  Result<Next> next(Outgoing& out) override {
    if (taken_ == requests_.size()) return Next::kEnd;
    auto request = requests_[taken_]();
    if (!request) return std::move(request).error();
    out.request = std::move(*request);
    out.line = ++taken_;  // the seq: 1, 2, ...
    return Next::kReady;
  }

 private:
  std::vector<MakeRequest> requests_;
  std::size_t taken_ = 0;
};

struct Answer {
  std::optional<Outcome> outcome;
  std::string reason;
  std::vector<protocol::KeyInfo> keys;
  bool applied() const { return outcome == Outcome::kAccepted || outcome == Outcome::kDuplicate; }
};

class Answers : public Observer {
 public:
  explicit Answers(std::size_t n) : answers_(n) {}
  void on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) override {
    answers_.at(line - 1).outcome = outcome;
    answers_.at(line - 1).reason = reason;
  }
  void on_keys(std::uint64_t line, const std::vector<protocol::KeyInfo>& keys) override {
    answers_.at(line - 1).keys = keys;
  }
  std::vector<Answer>& answers() { return answers_; }

 private:
  std::vector<Answer> answers_;
};

struct Exchange {
  Status status;                // how the session ended
  std::vector<Answer> answers;  // one per request, in order
  std::string peer;             // host:port of the node that answered first
};

// Sends `requests` as one stream on `server`'s NAME-v2 subsystem, authenticated as `account`.
// A server without protocol 2 is an error before anything is sent.
Result<Exchange> exchange(const GlobalOptions& options, Account& account, const ServerConfig& server,
                          std::vector<MakeRequest> requests, Trace& trace) {
  SessionOptions session;
  session.timeout = timeout_of(options);
  session.reconnect_for = reconnect_window(options);
  session.protocol = 2;
  StopRequests stop;  // armed once connected, as for every session (src/signals.h)
  session.stop = &stop;
  auto stream = new_stream_id();
  if (!stream) return std::move(stream).error();
  session.stream = *stream;
  ServerConnector connector(server, account, options.host_key, timeout_of(options));
  connector.require_protocol2("account keys");
  auto channel = connector.connect(trace);
  if (!channel) return std::move(channel).error();
  GAME_TRY(stop.arm());
  Exchange result{{}, {}, (*channel)->peer()};
  Answers answers(requests.size());
  AccountRequests source(std::move(requests));
  Tally tally;
  result.status = run_session(std::move(*channel), connector, source, answers, session, trace, tally);
  result.answers = std::move(answers.answers());
  return result;
}

// The one answer of a one-request exchange: a lost session is the error, a rejection is `refused`.
Result<Answer> one_answer(Result<Exchange> done) {
  if (!done) return std::move(done).error();
  if (!done->status) return std::move(done->status).error();
  return std::move(done->answers.front());
}

// ---- what is shown ----------------------------------------------------------------------------

Status check_label(const std::string& label) {
  if (label.empty() || label.size() > 64 || text::printable(label) != label) {
    return make_error(Exit::kUsage, "--label must be 1 to 64 printable characters, e.g. --label laptop");
  }
  return {};
}

std::string default_label() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "device";
  std::string label(host);
  return label.substr(0, 64);
}

Result<PublicKey> key_of(const Identity& identity) { return PublicKey::from_line(identity.public_line); }
std::string fingerprint_of(const Identity& identity) {
  auto key = key_of(identity);
  return key ? key->fingerprint() : "SHA256:?";
}

// `game --config P --server S WORDS`, both always named (the config's path absolute), so that a
// printed command reaches the same account and server wherever it is pasted: neither
// $GAME_CONFIG, $GAME_SERVER nor the default server can change under it.
std::string command_for(const std::string& config_path, const std::string& server, const std::string& words) {
  auto absolute = fs::absolute_path(config_path);
  return "game --config " + text::shell_quote(absolute ? *absolute : config_path) + " --server " +
         text::shell_quote(server) + " " + words;
}

std::string key_summary(const PublicKey& key, const std::string& label) {
  return std::to_string(key.bits()) + " " + key.fingerprint() + " " + text::printable(label) + " (" +
         key.kind() + ")";
}

struct Context {
  Trace trace;
  Account account;
  ServerConfig server;
  std::chrono::milliseconds lock_wait;  // for the config's lock: --timeout
};

Result<Context> context_for(const GlobalOptions& options, const std::string& purpose) {
  GAME_TRY(check_options(options));
  Trace trace(options.verbose);
  auto account = existing_account(options, purpose, trace);
  if (!account) return std::move(account).error();
  auto server = select_server(account->config, options.server);
  if (!server) return std::move(server).error();
  return Context{trace, std::move(*account), std::move(*server), timeout_of(options)};
}

const char* const kNoAccount =
    "link this device to your account with `game link`, or create one with `game init`";

}  // namespace

// ---- game key list / add / remove -------------------------------------------------------------

Result<Exit> run_key_list(const GlobalOptions& options, bool json) {
  auto context = context_for(options, kNoAccount);
  if (!context) return std::move(context).error();
  auto answer = one_answer(
      exchange(options, context->account, context->server, {just(protocol::ListKeys{})}, context->trace));
  if (!answer) return std::move(answer).error();
  nlohmann::json keys = nlohmann::json::array();
  for (const protocol::KeyInfo& info : answer->keys) {
    auto key = PublicKey::from_blob(info.key);
    if (!key) return std::move(key).error();
    if (json) {
      keys.push_back({{"fingerprint", key->fingerprint()},
                      {"bits", key->bits()},
                      {"type", key->kind()},
                      {"label", info.label},
                      {"public_key", key->line()},
                      {"this_device", info.current}});
    } else {
      std::printf("%s%s\n", key_summary(*key, info.label).c_str(), info.current ? "  (this device)" : "");
    }
  }
  if (json) {
    const nlohmann::json object = {
        {"uuid", context->account.identity.uuid}, {"server", context->server.name}, {"keys", keys}};
    std::printf("%s\n", object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return Exit::kOk;
}

Result<Exit> run_key_add(const GlobalOptions& options, const std::string& public_line,
                         const std::string& label) {
  auto key = PublicKey::from_line(public_line);
  if (!key) return std::move(key).error();
  GAME_TRY(check_label(label));
  auto context = context_for(options, kNoAccount);
  if (!context) return std::move(context).error();
  const std::string& uuid = context->account.identity.uuid;
  auto done = exchange(options, context->account, context->server, {just(protocol::AddKey{key->blob, label})},
                       context->trace);
  if (!done) return std::move(done).error();
  const std::string peer = done->peer;
  auto answer = one_answer(std::move(done));
  if (!answer) {
    Error error = std::move(answer).error();
    error.message += " (the key may or may not have been added: run the same command again)";
    return error;
  }
  if (!answer->applied()) {
    return make_error(Exit::kRejected, "the server refused the key " + key->fingerprint() + ": " +
                                           text::printable(answer->reason) + "; nothing was added");
  }
  // The host key the new device must expect: the one this device checked, now in its config.
  std::string host_key = options.host_key;
  if (host_key.empty()) {
    auto reread = existing_account(options, kNoAccount, context->trace);
    if (!reread) return std::move(reread).error();
    if (const ServerConfig* server = reread->config.find_server(context->server.name))
      host_key = expected_host_key(*server, peer);
  }
  std::printf("added %s to account %s on %s\n", key_summary(*key, label).c_str(), uuid.c_str(),
              context->server.name.c_str());
  std::printf("On the new device, run:\n");
  std::printf("game --server %s --host-key %s link --uuid %s\n", text::shell_quote(peer).c_str(),
              text::shell_quote(host_key).c_str(), uuid.c_str());
  return Exit::kOk;
}

Result<Exit> run_key_remove(const GlobalOptions& options, const std::string& fingerprint) {
  auto context = context_for(options, kNoAccount);
  if (!context) return std::move(context).error();
  const std::string& uuid = context->account.identity.uuid;
  auto listed = one_answer(
      exchange(options, context->account, context->server, {just(protocol::ListKeys{})}, context->trace));
  if (!listed) return std::move(listed).error();
  std::optional<PublicKey> target;
  std::string label;
  bool current = false;
  for (const protocol::KeyInfo& info : listed->keys) {
    auto key = PublicKey::from_blob(info.key);
    if (!key) return std::move(key).error();
    if (key->fingerprint() == fingerprint || key->fingerprint() == "SHA256:" + fingerprint) {
      target = std::move(*key);
      label = info.label;
      current = info.current;
    }
  }
  if (!target) {
    return make_error(Exit::kDataErr, "account " + uuid + " has no key " + text::printable(fingerprint) +
                                          " (`game key list` shows its keys)");
  }
  auto answer = one_answer(exchange(options, context->account, context->server,
                                    {just(protocol::RemoveKey{target->blob})}, context->trace));
  if (!answer) {
    Error error = std::move(answer).error();
    error.message += " (the key may or may not have been removed: `game key list` shows)";
    return error;
  }
  if (!answer->applied()) {
    std::string message =
        "the server refused to remove " + target->fingerprint() + ": " + text::printable(answer->reason);
    if (answer->reason == "cannot remove the last key") {
      message +=
          ". An account always keeps at least one key, or nobody could play as it again; to replace "
          "this key use `game key rotate`, to retire this device link another one first (`game link`)";
    }
    return make_error(Exit::kRejected, message);
  }
  std::printf("removed %s from account %s\n", key_summary(*target, label).c_str(), uuid.c_str());
  if (current) {
    std::fprintf(stderr, "game: that was this device's key: this device can no longer play as %s\n",
                 uuid.c_str());
  }
  return Exit::kOk;
}

// ---- game link --------------------------------------------------------------------------------

namespace {

// On the new device, before it knows its account: its key and the command for the old device.
Result<Exit> link_start(const std::string& path, const std::string& label) {
  GAME_TRY(check_label(label));
  const std::string key_path = default_key_path(path);
  if (!fs::exists(key_path)) GAME_TRY(generate_key(key_path, ""));
  auto identity = load_key("", key_path);
  if (!identity) return std::move(identity).error();
  auto key = key_of(*identity);
  if (!key) return std::move(key).error();
  std::printf("this device's key: %s (%s)\n", key->fingerprint().c_str(), key_path.c_str());
  std::printf("On a device that already plays, run:\n");
  std::printf("game key add --label %s %s\n", text::shell_quote(label).c_str(),
              text::shell_quote(key->line()).c_str());
  return Exit::kOk;
}

// On the new device again, with the account the old device added its key to: proves that the key
// now logs in as `uuid` (listKeys, host key pinned) before any config names it.
Result<Exit> link_finish(const GlobalOptions& options, const std::string& path, const std::string& uuid) {
  if (!text::is_uuid(uuid))
    return make_error(Exit::kUsage, "--uuid must be a UUID, as `game key add` prints it");
  if (options.server.empty() || options.host_key.empty()) {
    return make_error(Exit::kUsage,
                      "link --uuid needs --server and --host-key: run the command `game key add` "
                      "printed, as printed");
  }
  const std::string key_path = default_key_path(path);
  if (!fs::exists(key_path)) {
    return make_error(Exit::kConfig, "no key at " + key_path + ": run `game link` here first");
  }
  Trace trace(options.verbose);
  auto identity = load_key(uuid, key_path);
  if (!identity) return std::move(identity).error();
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  Account account;
  account.config.path = path;
  account.config.uuid = uuid;
  account.config.key = fs::abbreviate_home(key_path, *home);
  account.identity = std::move(*identity);
  auto server = select_server(account.config, options.server);
  if (!server) return std::move(server).error();
  // The config does not exist yet: the pin is checked now and recorded once it does.
  server->host_key = options.host_key;
  auto done = exchange(options, account, *server, {just(protocol::ListKeys{})}, trace);
  if (!done) {
    Error error = std::move(done).error();
    if (error.code == Exit::kNoPerm) error.message += " (has `game key add` run on the other device?)";
    return error;
  }
  const std::string peer = done->peer;
  auto answer = one_answer(std::move(done));
  if (!answer) return std::move(answer).error();
  // Written only now, exclusively: an existing config is never replaced.
  GAME_TRY(fs::create_file_exclusive(path, new_config_text(uuid, account.config.key), 0600));
  // The pin the old device printed is the server's, for every node of it.
  GAME_TRY(record_host_key(path, *server, peer, options.host_key, HostKeyRecord::kFirstUse, /*shared=*/true,
                           timeout_of(options)));
  std::printf("linked: this device plays as %s with its own key %s (%zu keys on the account)\n", uuid.c_str(),
              fingerprint_of(account.identity).c_str(), answer->keys.size());
  return Exit::kOk;
}

}  // namespace

Result<Exit> run_link(const GlobalOptions& options, const std::string& label, const std::string& uuid) {
  GAME_TRY(check_options(options));
  auto path = config_path(options.config);
  if (!path) return std::move(path).error();
  if (fs::exists(*path)) {
    Trace trace(options.verbose);
    auto account = open_account(*path, timeout_of(options), trace);
    if (!account) return std::move(account).error();
    if (account->identity.uuid == uuid) {
      std::printf("already linked: this device plays as %s\n", uuid.c_str());
      return Exit::kOk;
    }
    return make_error(Exit::kUsage, "this device already has an identity (" + account->identity.uuid +
                                        " in " + *path +
                                        "); to add its key to another account give --config NEWFILE");
  }
  if (!uuid.empty()) return link_finish(options, *path, uuid);
  return link_start(*path, label.empty() ? default_label() : label);
}

// ---- game key rotate --------------------------------------------------------------------------

namespace {

Result<Config> edit_identity(const std::string& path,
                             const std::vector<std::pair<std::string, std::string>>& set,
                             const std::vector<std::string>& remove, std::chrono::milliseconds lock_wait) {
  return update_config(
      path,
      [&](const std::string& text) -> Result<std::string> {
        std::string out = text;
        for (const auto& [key, value] : set) {
          auto edited = set_table_value(out, path, {"identity"}, key, toml_string(value));
          if (!edited) return edited;
          out = std::move(*edited);
        }
        for (const std::string& key : remove) {
          auto edited = remove_table_value(out, path, {"identity"}, key);
          if (!edited) return edited;
          out = std::move(*edited);
        }
        return out;
      },
      lock_wait);
}

// Step 1: the new key, made once and named in the config (rotating_to) so that a second run
// after a failure sends the same key again instead of a third one.
Result<std::string> rotation_key(Context& context, Trace& trace) {
  const Config& config = context.account.config;
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  if (!config.rotating_to.empty()) {
    const std::string pending = fs::expand_home(config.rotating_to, *home);
    if (fs::exists(pending)) return pending;
  }
  const std::string key_path =
      fs::parent_dir(context.account.identity.key_path) + "/id_ed25519-" + std::to_string(std::time(nullptr));
  GAME_TRY(generate_key(key_path, context.account.identity.uuid));
  auto updated = edit_identity(config.path, {{"rotating_to", fs::abbreviate_home(key_path, *home)}}, {},
                               context.lock_wait);
  if (!updated) return std::move(updated).error();
  trace.step("new key " + key_path);
  return key_path;
}

// Step 3: the old key off the account, over a session signed by the new key.
Result<Exit> rotation_finish(const GlobalOptions& options, Context& context, const std::string& again) {
  const std::string& path = context.account.config.path;
  auto old_key = PublicKey::from_line(context.account.config.rotated_from);
  if (!old_key) return std::move(old_key).error();
  auto answer = one_answer(exchange(options, context.account, context.server,
                                    {just(protocol::RemoveKey{old_key->blob})}, context.trace));
  if (!answer) {
    Error error = std::move(answer).error();
    error.message += "; this device plays with its new key " + fingerprint_of(context.account.identity) +
                     ", but the old key " + old_key->fingerprint() +
                     " may still be on the account: finish with: " + again;
    return error;
  }
  if (!answer->applied() && answer->reason != "no such key") {
    return make_error(Exit::kRejected, "the server refused to remove the old key " + old_key->fingerprint() +
                                           ": " + text::printable(answer->reason) +
                                           "; this device plays with its new key");
  }
  auto updated = edit_identity(path, {}, {"rotated_from"}, context.lock_wait);
  if (!updated) return std::move(updated).error();
  std::printf("rotated: this device plays as %s with %s; the old key %s is off the account\n",
              context.account.identity.uuid.c_str(), fingerprint_of(context.account.identity).c_str(),
              old_key->fingerprint().c_str());
  return Exit::kOk;
}

}  // namespace

Result<Exit> run_key_rotate(const GlobalOptions& options, const std::string& given_label) {
  const std::string label = given_label.empty() ? default_label() : given_label;
  GAME_TRY(check_label(label));
  auto context = context_for(options, kNoAccount);
  if (!context) return std::move(context).error();
  const std::string path = context->account.config.path;
  const std::string again = command_for(path, context->server.name, "key rotate");
  if (!context->account.config.rotated_from.empty()) return rotation_finish(options, *context, again);
  // Step 2: the new key onto the account, over a session signed by the old one. The key is made
  // (or the pending one taken) only once that session is up.
  std::optional<Identity> new_identity;
  std::optional<PublicKey> new_key;
  const MakeRequest add = [&]() -> Result<protocol::AccountRequest> {
    auto new_path = rotation_key(*context, context->trace);
    if (!new_path) return std::move(new_path).error();
    auto identity = load_key(context->account.identity.uuid, *new_path);
    if (!identity) return std::move(identity).error();
    auto key = key_of(*identity);
    if (!key) return std::move(key).error();
    new_identity = std::move(*identity);
    new_key = *key;
    return protocol::AccountRequest(protocol::AddKey{key->blob, label});
  };
  auto old_key = key_of(context->account.identity);
  if (!old_key) return std::move(old_key).error();
  auto answer = one_answer(exchange(options, context->account, context->server, {add}, context->trace));
  if (!answer) {
    Error error = std::move(answer).error();
    if (!new_key) return error;  // nothing was sent
    error.message +=
        "; the new key " + new_key->fingerprint() +
        " may or may not be on the account. This device still plays with its old key; finish with: " + again;
    return error;
  }
  if (!answer->applied()) {
    return make_error(Exit::kRejected, "the server refused the new key " + new_key->fingerprint() + ": " +
                                           text::printable(answer->reason) +
                                           "; this device keeps its old key");
  }
  // The switch, in one atomic write of the config: from here on this device signs with the new key.
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  auto switched = edit_identity(
      path, {{"key", fs::abbreviate_home(new_identity->key_path, *home)}, {"rotated_from", old_key->line()}},
      {"rotating_to"}, context->lock_wait);
  if (!switched) {
    Error error = std::move(switched).error();
    error.message +=
        "; the new key is on the account, this device still plays with its old key; finish with: " + again;
    return error;
  }
  context->account.config = std::move(*switched);
  context->account.identity = std::move(*new_identity);
  return rotation_finish(options, *context, again);
}

}  // namespace game
