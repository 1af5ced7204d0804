#include "identity.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "fs.h"

namespace game {
namespace {

constexpr auto kLockTimeout = std::chrono::seconds(30);

std::string lock_path(const std::string& config) { return config + ".lock"; }

// Where a replaced file is kept: beside it, named after the time it was replaced.
std::string aside_path(const std::string& path) {
  return path + ".replaced-" + std::to_string(std::time(nullptr));
}

Result<Config> read_config(const std::string& path) {
  GAME_TRY(fs::check_private(path, "config file"));
  auto text = fs::read_file(path);
  if (!text) return std::move(text).error();
  if (!*text) return make_error(Exit::kConfig, path + " does not exist");
  return parse_config(**text, path);
}

// ---- passphrases -----------------------------------------------------------------------------

struct PassphraseContext {
  std::string key_path;
  bool no_terminal = false;
};

// libssh's passphrase callback: asks on the controlling terminal, with echo off, like ssh does.
int ask_passphrase(const char*, char* buf, size_t len, int, int, void* userdata) {
  auto* context = static_cast<PassphraseContext*>(userdata);
  const int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) {
    context->no_terminal = true;
    return -1;
  }
  termios saved{};
  const bool is_tty = ::tcgetattr(tty, &saved) == 0;
  if (is_tty) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  // Echo off before the prompt, as readpassphrase(3) does: what is typed as soon as the prompt
  // shows is neither echoed nor discarded by TCSAFLUSH.
  const std::string prompt = "Enter passphrase for " + context->key_path + ": ";
  (void)!::write(tty, prompt.data(), prompt.size());
  std::size_t n = 0;
  for (char c; n + 1 < len && ::read(tty, &c, 1) == 1 && c != '\n';) buf[n++] = c;
  buf[n] = '\0';
  if (is_tty) ::tcsetattr(tty, TCSAFLUSH, &saved);
  (void)!::write(tty, "\n", 1);
  ::close(tty);
  return 0;
}

Error key_load_error(const std::string& path, const PassphraseContext& context) {
  if (context.no_terminal) {
    return make_error(Exit::kConfig, "the private key " + path +
                                         " is passphrase-protected and there is no terminal to ask for the "
                                         "passphrase: add it to ssh-agent (ssh-add " +
                                         path + ") or run game in a terminal");
  }
  return make_error(Exit::kConfig, "cannot load the private key " + path +
                                       " (wrong passphrase, or not an OpenSSH/PEM private key)");
}

Result<SshKey> import_private_file(const std::string& path) {
  PassphraseContext context{path};
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_file(path.c_str(), nullptr, ask_passphrase, &context, &raw) != SSH_OK) {
    return key_load_error(path, context);
  }
  return SshKey(raw);
}

Result<SshKey> import_private_text(const std::string& text, const std::string& origin) {
  PassphraseContext context{origin};
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_base64(text.c_str(), nullptr, ask_passphrase, &context, &raw) != SSH_OK) {
    return key_load_error(origin, context);
  }
  return SshKey(raw);
}

// ---- public key facts ------------------------------------------------------------------------

std::string key_type_name(ssh_key key) {
  const enum ssh_keytypes_e type = ssh_key_type(key);
  if (type == SSH_KEYTYPE_ECDSA_P256 || type == SSH_KEYTYPE_ECDSA_P384 || type == SSH_KEYTYPE_ECDSA_P521) {
    return ssh_pki_key_ecdsa_name(key);
  }
  return ssh_key_type_to_char(type);
}

Status check_key_type(ssh_key key, const std::string& path) {
  switch (ssh_key_type(key)) {
    case SSH_KEYTYPE_ED25519:
    case SSH_KEYTYPE_ECDSA_P256:
    case SSH_KEYTYPE_ECDSA_P384:
    case SSH_KEYTYPE_ECDSA_P521:
    case SSH_KEYTYPE_RSA:
      return {};
    default:
      return make_error(Exit::kConfig, path + ": only ed25519, ecdsa and rsa keys are supported");
  }
}

Result<SshKey> public_of(ssh_key private_key) {
  ssh_key raw = nullptr;
  if (ssh_pki_export_privkey_to_pubkey(private_key, &raw) != SSH_OK) {
    return make_error(Exit::kConfig, "cannot derive the public key");
  }
  return SshKey(raw);
}

Result<std::string> public_base64(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
    return make_error(Exit::kConfig, "cannot encode the public key");
  const SshChars owned(b64);
  return std::string(b64);
}

// The key's wire-format blob, as ssh-agent lists it.
std::string public_blob(const std::string& base64) {
  std::string blob(base64.size(), '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(blob.data()),
                      reinterpret_cast<const unsigned char*>(base64.data()), static_cast<int>(base64.size()));
  if (n < 0) return {};
  std::size_t padding = 0;
  for (auto it = base64.rbegin(); it != base64.rend() && *it == '='; ++it) ++padding;
  blob.resize(static_cast<std::size_t>(n) - padding);
  return blob;
}

// The public half: from KEY.pub when present (no passphrase needed), else from the key itself.
Result<SshKey> load_public(const std::string& key_path) {
  const std::string pub_path = key_path + ".pub";
  if (fs::exists(pub_path)) {
    ssh_key raw = nullptr;
    if (ssh_pki_import_pubkey_file(pub_path.c_str(), &raw) != SSH_OK) {
      return make_error(Exit::kConfig, "cannot read the public key " + pub_path);
    }
    return SshKey(raw);
  }
  auto private_key = import_private_file(key_path);
  if (!private_key) return std::move(private_key).error();
  return public_of(private_key->get());
}

Result<Identity> describe(const std::string& uuid, const std::string& key_path, SshKey public_key) {
  Identity identity;
  identity.uuid = uuid;
  identity.key_path = key_path;
  GAME_TRY(check_key_type(public_key.get(), key_path));
  auto base64 = public_base64(public_key.get());
  if (!base64) return std::move(base64).error();
  identity.public_line = key_type_name(public_key.get()) + " " + *base64 + " game:" + uuid;
  identity.public_key = std::move(public_key);
  return identity;
}

Result<Identity> load_identity(const Config& config, const std::string& home) {
  const std::string key_path = fs::expand_home(config.key, home);
  if (!fs::exists(key_path)) {
    return make_error(Exit::kConfig,
                      config.path + ": identity.key names " + key_path +
                          ", which does not exist. Restore it from your backup (`game identity "
                          "import`); a new key would make you a different player");
  }
  return load_key(config.uuid, key_path);
}

// ---- creating files --------------------------------------------------------------------------

Status write_key_files(const std::string& key_path, const std::string& private_text, ssh_key private_key,
                       const std::string& uuid) {
  auto pub = public_of(private_key);
  if (!pub) return std::move(pub).error();
  auto base64 = public_base64(pub->get());
  if (!base64) return std::move(base64).error();
  GAME_TRY(fs::make_private_dirs(fs::parent_dir(key_path)));
  GAME_TRY(fs::create_file_exclusive(key_path, private_text, 0600));
  return fs::write_file_atomic(key_path + ".pub",
                               key_type_name(pub->get()) + " " + *base64 + " game:" + uuid + "\n", 0644);
}

Result<std::string> new_key_text(const SshKey& key) {
  char* b64 = nullptr;
  if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &b64) != SSH_OK) {
    return make_error(Exit::kIoErr, "cannot encode the new private key");
  }
  const SshChars owned(b64);
  return std::string(b64);
}

// First use: a new ed25519 key (or an adopted one), then the config naming it. The config
// appears last and atomically, so a process that sees the config always finds its key.
Status create_account(const std::string& path, const std::string& home, const std::string& adopt) {
  const std::string uuid = generate_uuid();
  std::string key_path;
  if (adopt.empty()) {
    key_path = default_key_path(path);
    if (fs::exists(key_path)) {
      return make_error(Exit::kConfig, key_path + " exists but " + path +
                                           " does not; refusing to create a new identity beside an "
                                           "existing key (adopt it: game init --key " +
                                           key_path + ")");
    }
    GAME_TRY(generate_key(key_path, uuid));
  } else {
    key_path = fs::expand_home(adopt, home);
    if (!fs::exists(key_path)) return make_error(Exit::kNoInput, "no key at " + key_path);
    GAME_TRY(fs::check_private(key_path, "private key"));
    auto public_key = load_public(key_path);
    if (!public_key) return std::move(public_key).error();
    GAME_TRY(check_key_type(public_key->get(), key_path));
  }
  return fs::write_file_atomic(path, new_config_text(uuid, fs::abbreviate_home(key_path, home)), 0600);
}

Result<Account> load_account(const std::string& path, const std::string& home, Trace& trace) {
  auto config = read_config(path);
  if (!config) return std::move(config).error();
  auto identity = load_identity(*config, home);
  if (!identity) return std::move(identity).error();
  if (trace.enabled()) trace.step("loaded identity " + identity->uuid + " (" + identity->fingerprint() + ")");
  return Account{std::move(*config), std::move(*identity)};
}

}  // namespace

std::string default_key_path(const std::string& config) {
  return fs::parent_dir(config) + "/.game/id_ed25519";
}

Status generate_key(const std::string& key_path, const std::string& uuid) {
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) {
    return make_error(Exit::kIoErr, "cannot generate an ed25519 key");
  }
  const SshKey key(raw);
  auto text = new_key_text(key);
  if (!text) return std::move(text).error();
  return write_key_files(key_path, *text, key.get(), uuid);
}

Result<Identity> load_key(const std::string& uuid, const std::string& key_path) {
  GAME_TRY(fs::check_private(key_path, "private key"));
  auto public_key = load_public(key_path);
  if (!public_key) return std::move(public_key).error();
  return describe(uuid, key_path, std::move(*public_key));
}

// libssh hashes every key it could load; "SHA256:?" would mean it ran out of memory.
std::string Identity::fingerprint() const {
  unsigned char* raw_hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(public_key.get(), SSH_PUBLICKEY_HASH_SHA256, &raw_hash, &len) != 0)
    return "SHA256:?";
  const std::unique_ptr<unsigned char, SshHashFree> hash(raw_hash);
  const SshChars text(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash.get(), len));
  return text ? std::string(text.get()) : "SHA256:?";
}

Status Identity::unlock() {
  if (private_key || agent) return {};
  if (const char* sock = std::getenv("SSH_AUTH_SOCK"); sock != nullptr && *sock != '\0') {
    auto base64 = public_base64(public_key.get());
    if (base64) agent = AgentKey::find(sock, public_blob(*base64));
    if (agent) return {};
  }
  auto key = import_private_file(key_path);
  if (!key) return std::move(key).error();
  if (ssh_key_cmp(key->get(), public_key.get(), SSH_KEY_CMP_PUBLIC) != 0) {
    return make_error(Exit::kConfig, key_path + ".pub does not belong to " + key_path);
  }
  private_key = std::move(*key);
  return {};
}

Result<std::string> config_path(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("GAME_CONFIG"); env != nullptr && *env != '\0') return std::string(env);
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  return *home + "/.gameconfig";
}

std::string generate_uuid() {
  unsigned char b[16];
  for (size_t got = 0; got < sizeof b;) {
    const ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n < 0) std::abort();  // getrandom only fails on invalid arguments or EINTR before init
    got += static_cast<size_t>(n);
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

Result<Account> open_account(const std::string& path, Trace& trace) {
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  if (!fs::exists(path)) {
    auto lock = fs::FileLock::acquire(lock_path(path), kLockTimeout);
    if (!lock) return std::move(lock).error();
    if (!fs::exists(path)) {  // another process may have created it while we waited
      GAME_TRY(create_account(path, *home, ""));
      trace.step("created a new identity in " + path);
      std::fprintf(stderr, "game: created a new player identity in %s (back it up: it is your account)\n",
                   path.c_str());
    }
  }
  return load_account(path, *home, trace);
}

Result<Account> init_account(const std::string& path, const std::string& adopt_key, Trace& trace) {
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  {
    auto lock = fs::FileLock::acquire(lock_path(path), kLockTimeout);
    if (!lock) return std::move(lock).error();
    if (fs::exists(path)) {
      return make_error(Exit::kConfig, path +
                                           " already holds an identity; it is kept as it is (to replace it "
                                           "deliberately: game identity import --force)");
    }
    GAME_TRY(create_account(path, *home, adopt_key));
  }
  trace.step("created identity in " + path);
  return load_account(path, *home, trace);
}

Result<std::string> export_identity(const Account& account) {
  auto key = fs::read_file(account.identity.key_path);
  if (!key) return std::move(key).error();
  if (!*key) return make_error(Exit::kConfig, account.identity.key_path + " disappeared");
  return identity_blob_text(IdentityBlob{account.identity.uuid, **key});
}

Result<std::string> import_identity(const std::string& path, const std::string& text, bool force,
                                    Trace& trace) {
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  auto blob = parse_identity_blob(text, "identity import");
  if (!blob) return std::move(blob).error();
  auto key = import_private_text(blob->private_key, "the imported key");
  if (!key) return std::move(key).error();
  auto pub = public_of(key->get());
  if (!pub) return std::move(pub).error();
  GAME_TRY(check_key_type(pub->get(), "the imported key"));

  auto lock = fs::FileLock::acquire(lock_path(path), kLockTimeout);
  if (!lock) return std::move(lock).error();
  std::string config_text;
  std::string old_key_path;
  if (fs::exists(path)) {
    auto current = read_config(path);
    if (!current) return std::move(current).error();
    old_key_path = fs::expand_home(current->key, *home);
    auto old_key = fs::read_file(old_key_path);
    if (!old_key) return std::move(old_key).error();
    if (current->uuid == blob->uuid && *old_key && **old_key == blob->private_key) {
      return std::string("identity " + blob->uuid + " is already the one in " + path);
    }
    if (!force) {
      return make_error(Exit::kConfig,
                        path + " holds another identity (" + current->uuid +
                            "); refusing to replace it. To replace it deliberately, use --force: "
                            "the current config and key are then kept aside, renamed *.replaced-TIME");
    }
    auto config_now = fs::read_file(path);
    if (!config_now || !*config_now) return make_error(Exit::kIoErr, "cannot read " + path);
    config_text = **config_now;
    GAME_TRY(fs::create_file_exclusive(aside_path(path), config_text, 0600));
  }
  const std::string key_path = default_key_path(path);
  for (const std::string& existing : {key_path, key_path + ".pub"}) {
    if (fs::exists(existing) && std::rename(existing.c_str(), aside_path(existing).c_str()) != 0) {
      return make_error(Exit::kIoErr, "cannot move " + existing + " aside");
    }
  }
  GAME_TRY(write_key_files(key_path, blob->private_key, key->get(), blob->uuid));
  const std::string key_value = toml_string(fs::abbreviate_home(key_path, *home));
  if (config_text.empty()) {
    GAME_TRY(
        fs::write_file_atomic(path, new_config_text(blob->uuid, fs::abbreviate_home(key_path, *home)), 0600));
  } else {
    // Keep the user's servers, pinned keys and comments: only the identity changes.
    auto edited = set_table_value(config_text, path, {"identity"}, "uuid", toml_string(blob->uuid));
    if (edited) edited = set_table_value(*edited, path, {"identity"}, "key", key_value);
    if (!edited) return std::move(edited).error();
    GAME_TRY(fs::write_file_atomic(path, *edited, 0600));
  }
  trace.step("imported identity " + blob->uuid);
  return std::string("imported identity " + blob->uuid + " into " + path);
}

Result<Config> update_config(const std::string& path, const ConfigEdit& edit) {
  auto lock = fs::FileLock::acquire(lock_path(path), kLockTimeout);
  if (!lock) return std::move(lock).error();
  auto text = fs::read_file(path);
  if (!text) return std::move(text).error();
  if (!*text) return make_error(Exit::kConfig, path + " disappeared while updating it");
  auto edited = edit(**text);
  if (!edited) return std::move(edited).error();
  auto config = parse_config(*edited, path);
  if (!config) {
    return make_error(Exit::kConfig, "refusing to write " + path + ": the update would break it (" +
                                         config.error().message + ")");
  }
  if (*edited != **text) GAME_TRY(fs::write_file_atomic(path, *edited, 0600));
  return config;
}

}  // namespace game
