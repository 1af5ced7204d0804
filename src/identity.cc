#include "identity.h"

#include <sys/random.h>

#include <cstdio>
#include <cstdlib>

#include "fs.h"

namespace game {
namespace {

constexpr auto kLockTimeout = std::chrono::seconds(30);

std::string lock_path(const std::string& config) { return config + ".lock"; }

std::string default_key_path(const std::string& config) {
  return fs::parent_dir(config) + "/.game/id_ed25519";
}

Result<Config> read_config(const std::string& path) {
  GAME_TRY(fs::check_private(path, "config file"));
  auto text = fs::read_file(path);
  if (!text) return std::move(text).error();
  if (!*text) return make_error(Exit::kConfig, path + " does not exist");
  return parse_config(**text, path);
}

std::string key_type_name(ssh_key key) {
  const enum ssh_keytypes_e type = ssh_key_type(key);
  if (type == SSH_KEYTYPE_ECDSA_P256 || type == SSH_KEYTYPE_ECDSA_P384 || type == SSH_KEYTYPE_ECDSA_P521) {
    return ssh_pki_key_ecdsa_name(key);
  }
  return ssh_key_type_to_char(type);
}

Result<std::string> public_line(ssh_key private_key, const std::string& comment) {
  ssh_key raw = nullptr;
  if (ssh_pki_export_privkey_to_pubkey(private_key, &raw) != SSH_OK) {
    return make_error(Exit::kConfig, "cannot derive the public key");
  }
  const SshKey pub(raw);
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(pub.get(), &b64) != SSH_OK) {
    return make_error(Exit::kConfig, "cannot encode the public key");
  }
  const SshChars owned(b64);
  return key_type_name(pub.get()) + " " + b64 + " " + comment;
}

Result<std::string> fingerprint(ssh_key key) {
  unsigned char* raw_hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &raw_hash, &len) != 0) {
    return make_error(Exit::kConfig, "cannot hash the public key");
  }
  const std::unique_ptr<unsigned char, SshHashFree> hash(raw_hash);
  const SshChars text(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash.get(), len));
  return std::string(text.get());
}

Result<Identity> load_identity(const Config& config, const std::string& home) {
  Identity identity;
  identity.uuid = config.uuid;
  identity.key_path = fs::expand_home(config.key, home);
  if (!fs::exists(identity.key_path)) {
    return make_error(Exit::kConfig,
                      config.path + ": identity.key names " + identity.key_path +
                          ", which does not exist. Restore it from your backup (`game identity "
                          "import`); a new key would make you a different player");
  }
  GAME_TRY(fs::check_private(identity.key_path, "private key"));
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_file(identity.key_path.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK) {
    return make_error(Exit::kConfig, "cannot load the private key " + identity.key_path +
                                         " (not an OpenSSH/PEM private key, or passphrase-protected)");
  }
  identity.key.reset(raw);
  auto line = public_line(identity.key.get(), "game:" + identity.uuid);
  if (!line) return std::move(line).error();
  identity.public_line = std::move(*line);
  auto print = fingerprint(identity.key.get());
  if (!print) return std::move(print).error();
  identity.fingerprint = std::move(*print);
  return identity;
}

// First use: a new ed25519 key, then the config naming it (the config appears last and
// atomically, so a process that sees the config always finds its key).
Status create_account(const std::string& path, const std::string& home) {
  const std::string key_path = default_key_path(path);
  if (fs::exists(key_path)) {
    return make_error(Exit::kConfig, key_path + " exists but " + path +
                                         " does not; refusing to create a new identity beside "
                                         "an existing key (restore your config, or adopt the key "
                                         "in a config of your own)");
  }
  GAME_TRY(fs::make_private_dirs(fs::parent_dir(key_path)));
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) {
    return make_error(Exit::kIoErr, "cannot generate an ed25519 key");
  }
  const SshKey key(raw);
  char* b64 = nullptr;
  if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &b64) != SSH_OK) {
    return make_error(Exit::kIoErr, "cannot encode the new private key");
  }
  const SshChars pem(b64);
  const std::string uuid = generate_uuid();
  auto pub = public_line(key.get(), "game:" + uuid);
  if (!pub) return std::move(pub).error();
  GAME_TRY(fs::create_file_exclusive(key_path, pem.get(), 0600));
  GAME_TRY(fs::write_file_atomic(key_path + ".pub", *pub + "\n", 0644));
  return fs::write_file_atomic(path, new_config_text(uuid, fs::abbreviate_home(key_path, home)), 0600);
}

}  // namespace

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
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

Result<Account> open_account(const std::string& path, Trace& trace) {
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  if (!fs::exists(path)) {
    auto lock = fs::FileLock::acquire(lock_path(path), kLockTimeout);
    if (!lock) return std::move(lock).error();
    if (!fs::exists(path)) {  // another process may have created it while we waited
      GAME_TRY(create_account(path, *home));
      trace.step("created a new identity in " + path);
      std::fprintf(stderr, "game: created a new player identity in %s (back it up: it is your account)\n",
                   path.c_str());
    }
  }
  auto config = read_config(path);
  if (!config) return std::move(config).error();
  auto identity = load_identity(*config, *home);
  if (!identity) return std::move(identity).error();
  trace.step("loaded identity " + identity->uuid + " (" + identity->fingerprint + ")");
  return Account{std::move(*config), std::move(*identity)};
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
  GAME_TRY(fs::write_file_atomic(path, *edited, 0600));
  return config;
}

}  // namespace game
