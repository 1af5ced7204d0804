#include "identity.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>

#include "config_store.h"
#include "crypto_init.h"
#include "fs.h"
#include "passphrase.h"
#include "text.h"

namespace game {
namespace {

// Where a replaced config is kept: beside it, named after the time it was replaced.
std::string aside_path(const std::string& path) {
  return path + ".replaced-" + std::to_string(std::time(nullptr));
}

// $HOME, or empty when unset: only a "~/" path needs it (see expand_key_path).
std::string optional_home() {
  auto home = fs::home_dir();
  return home ? *home : std::string();
}

Result<std::string> expand_key_path(const std::string& key, const std::string& home,
                                    const std::string& where) {
  if (fs::needs_home(key) && home.empty()) {
    return make_error(Exit::kConfig, where + ": the key path " + key +
                                         " starts with ~/ but HOME is not set (set HOME, or write the "
                                         "absolute path)");
  }
  return fs::expand_home(key, home);
}

Result<Config> read_config(const std::string& path) {
  auto text = fs::read_private_file(path, "config file", kMaxConfigBytes);
  if (!text) return std::move(text).error();
  if (!*text) return make_error(Exit::kConfig, path + " does not exist");
  auto config = parse_config(**text, path);
  if (config) {
    for (const std::string& warning : config->warnings)
      std::fprintf(stderr, "game: warning: %s\n", warning.c_str());
  }
  return config;
}

// ---- private keys ----------------------------------------------------------------------------

constexpr std::size_t kMaxKeyBytes = 64 * 1024;
constexpr int kPassphraseTries = 3;  // as ssh(1) allows

// libssh calls this only for an encrypted key: it notes that, and asks nothing (OpenSSL would
// otherwise prompt on its own, without our signal handling).
int note_encrypted(const char*, char*, size_t, int, int, void* userdata) {
  *static_cast<bool*>(userdata) = true;
  return -1;
}

// The cipher an OpenSSH private key is encrypted with ("none" when it is not), or "" when `text`
// holds no OpenSSH key. Its binary form starts "openssh-key-v1\0" and the cipher's name as an SSH
// string, all within the first 80 base64 digits.
std::string openssh_key_cipher(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view kMagic("openssh-key-v1\0", 15);
  constexpr std::size_t kDigits = 80;
  // Read as libssh reads it (pki_container_openssh.c): the marker anywhere, the rest of its line
  // skipped, every white-space character dropped.
  std::size_t at = text.find(kBegin);
  if (at == std::string_view::npos) return {};
  at += kBegin.size();
  while (at < text.size() && std::isspace(static_cast<unsigned char>(text[at])) == 0) ++at;
  std::string digits;
  for (; at < text.size() && text[at] != '-' && digits.size() < kDigits; ++at) {
    if (std::isspace(static_cast<unsigned char>(text[at])) == 0) digits += text[at];
  }
  std::array<unsigned char, kDigits / 4 * 3> raw{};
  if (digits.size() != kDigits ||
      EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(digits.data()), kDigits) !=
          static_cast<int>(raw.size()) ||
      std::memcmp(raw.data(), kMagic.data(), kMagic.size()) != 0) {
    return {};
  }
  const std::size_t name = kMagic.size() + 4;
  const std::size_t length = std::size_t{raw[name - 4]} << 24 | std::size_t{raw[name - 3]} << 16 |
                             std::size_t{raw[name - 2]} << 8 | std::size_t{raw[name - 1]};
  if (length > raw.size() - name) return {};
  return {reinterpret_cast<const char*>(raw.data() + name), length};
}

// libssh 0.10 decrypts an OpenSSH key with its packet ciphers, and for the AEAD ones (AES-GCM,
// ChaCha20-Poly1305) it calls a decrypt function they do not have: the process crashes (a NULL
// function pointer under ssh_pki_import_privkey_base64). Such a key is refused before libssh
// sees it, with the command that re-encrypts it with a cipher libssh can use: on `path`, or
// (`path` empty: an imported key) where the key was exported from. Only a key libssh is about to
// decrypt is checked: an agent that holds the key signs without it.
Status check_key_cipher(std::string_view text, const std::string& path) {
  constexpr std::array<std::string_view, 3> kAead = {"aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                                                     "chacha20-poly1305@openssh.com"};
  const std::string cipher = openssh_key_cipher(text);
  if (std::find(kAead.begin(), kAead.end(), cipher) == kAead.end()) return {};
  const std::string fix =
      "ssh-keygen -p -Z aes256-ctr -f " + (path.empty() ? "KEY" : text::shell_quote(path));
  const std::string what = path.empty() ? "the imported private key" : "the private key " + path;
  return make_error(Exit::kConfig,
                    what + " is encrypted with " + cipher +
                        ", which libssh cannot decrypt: re-encrypt it with `" + fix + "`" +
                        (path.empty() ? " where it was exported from, and export it again" : ""));
}

// The private key in `text` (OpenSSH or PEM), asking for its passphrase on the terminal when
// it is encrypted: up to three tries. `path` is the file it was read from, empty for an imported
// key.
Result<SshKey> decode_private(const std::string& text, const std::string& path) {
  const std::string origin = path.empty() ? "the imported key" : path;
  ssh_key raw = nullptr;
  bool encrypted = false;
  GAME_TRY(check_key_cipher(text, path));
  if (!prepare_key_decoding(text)) {
    return make_error(Exit::kIoErr, "cannot load OpenSSL's default provider to decode the PEM key " + origin);
  }
  if (ssh_pki_import_privkey_base64(text.c_str(), nullptr, note_encrypted, &encrypted, &raw) == SSH_OK) {
    return SshKey(raw);
  }
  if (!encrypted) return make_error(Exit::kConfig, origin + " is not an OpenSSH or PEM private key");
  for (int attempt = 0; attempt < kPassphraseTries; ++attempt) {
    auto passphrase = read_passphrase(
        (attempt == 0 ? "Enter passphrase for " : "Bad passphrase, try again for ") + origin + ": ");
    if (!passphrase && attempt == 0) {
      return make_error(Exit::kConfig, "the private key " + origin +
                                           " is passphrase-protected and there is no terminal to ask for the "
                                           "passphrase: add it to ssh-agent (ssh-add " +
                                           origin + ") or run game in a terminal");
    }
    if (!passphrase) break;
    const int rc = ssh_pki_import_privkey_base64(text.c_str(), passphrase->c_str(), nullptr, nullptr, &raw);
    fs::wipe(*passphrase);
    if (rc == SSH_OK) return SshKey(raw);
  }
  return make_error(Exit::kConfig, "wrong passphrase for the private key " + origin + " (" +
                                       std::to_string(kPassphraseTries) + " tries)");
}

// Reads the private key file (refused if others may read it) and decodes it; the text is wiped.
Result<SshKey> load_private(const std::string& path) {
  auto text = fs::read_private_file(path, "private key", kMaxKeyBytes);
  if (!text) return std::move(text).error();
  if (!*text) return make_error(Exit::kConfig, "the private key " + path + " does not exist");
  auto key = decode_private(**text, path);
  fs::wipe(**text);
  return key;
}

// Refuses a key file that others may read, or that cannot be read at all: before connecting,
// so that nothing (a host key, a registration) is recorded for an identity that cannot sign.
Status check_private_key(const std::string& path) {
  auto text = fs::read_private_file(path, "private key", kMaxKeyBytes);
  if (!text) return std::move(text).error();
  if (*text) fs::wipe(**text);
  return {};
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
  auto private_key = load_private(key_path);
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
  auto expanded = expand_key_path(config.key, home, config.path);
  if (!expanded) return std::move(expanded).error();
  const std::string& key_path = *expanded;
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
  Status pub_written = fs::write_file_atomic(
      key_path + ".pub", key_type_name(pub->get()) + " " + *base64 + " game:" + uuid + "\n", 0644);
  if (!pub_written) ::unlink(key_path.c_str());  // never half a key pair
  return pub_written;
}

void remove_key_files(const std::string& key_path) {
  ::unlink((key_path + ".pub").c_str());
  ::unlink(key_path.c_str());
}

Result<std::string> new_key_text(const SshKey& key) {
  char* b64 = nullptr;
  if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &b64) != SSH_OK) {
    return make_error(Exit::kIoErr, "cannot encode the new private key");
  }
  const SshChars owned(b64);
  std::string text(b64);
  volatile char* p = b64;
  for (std::size_t i = 0; p[i] != '\0'; ++i) p[i] = 0;
  return text;
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
                                           " does not: that key belongs to an identity whose config is "
                                           "missing. Restore it from your backup (game identity import "
                                           "FILE), or move the key away to start a new identity");
    }
    GAME_TRY(generate_key(key_path, uuid));
  } else {
    auto expanded = expand_key_path(adopt, home, "--key");
    if (!expanded) return std::move(expanded).error();
    key_path = *expanded;
    if (!fs::exists(key_path)) return make_error(Exit::kNoInput, "no key at " + key_path);
    GAME_TRY(check_private_key(key_path));
    auto public_key = load_public(key_path);
    if (!public_key) return std::move(public_key).error();
    GAME_TRY(check_key_type(public_key->get(), key_path));
  }
  Status created = create_config(path, uuid, fs::abbreviate_home(key_path, home), {});
  if (!created && adopt.empty()) remove_key_files(key_path);  // no orphan key to block the next try
  return created;
}

Result<Account> load_account(const std::string& path, const std::string& home, Trace& trace) {
  auto config = read_config(path);
  if (!config) return std::move(config).error();
  auto identity = load_identity(*config, home);
  if (!identity) return std::move(identity).error();
  if (trace.enabled()) trace.step("loaded identity " + identity->uuid + " (" + identity->fingerprint() + ")");
  return Account{std::move(*config), std::move(*identity)};
}

// Where an imported key goes: the config's usual key path, or, when that holds the key of the
// identity being replaced, a path of its own, so that the old key stays where the old config
// (kept aside) says it is, and the new config's atomic rename is the one moment of change.
std::string import_key_path(const std::string& config, const std::string& uuid) {
  std::string usual = default_key_path(config);
  if (!fs::exists(usual) && !fs::exists(usual + ".pub")) return usual;
  return usual + "-" + uuid.substr(0, 8);
}

}  // namespace

// ~/.game/id_ed25519 for ~/.gameconfig; a config of another name gets a key named after it, so
// that two configs in one directory never share a key (two players would).
std::string default_key_path(const std::string& config) {
  const std::string name = fs::base_name(config);
  return fs::parent_dir(config) + "/.game/id_ed25519" + (name == ".gameconfig" ? "" : "-" + name);
}

Status generate_key(const std::string& key_path, const std::string& uuid) {
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) {
    return make_error(Exit::kIoErr, "cannot generate an ed25519 key");
  }
  const SshKey key(raw);
  auto text = new_key_text(key);
  if (!text) return std::move(text).error();
  Status written = write_key_files(key_path, *text, key.get(), uuid);
  fs::wipe(*text);
  return written;
}

Result<Identity> load_key(const std::string& uuid, const std::string& key_path) {
  GAME_TRY(check_private_key(key_path));
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
  auto key = load_private(key_path);
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

Result<Account> open_account(const std::string& path, std::chrono::milliseconds lock_wait, Trace& trace) {
  const std::string home = optional_home();
  if (!fs::exists(path)) {
    auto lock = fs::FileLock::acquire(lock_path(path), lock_wait);
    if (!lock) return std::move(lock).error();
    if (!fs::exists(path)) {  // another process may have created it while we waited
      GAME_TRY(create_account(path, home, ""));
      trace.step("created a new identity in " + path);
      std::fprintf(stderr, "game: created a new player identity in %s (back it up: it is your account)\n",
                   path.c_str());
    }
  }
  return load_account(path, home, trace);
}

Result<Account> init_account(const std::string& path, const std::string& adopt_key,
                             std::chrono::milliseconds lock_wait, Trace& trace) {
  const std::string home = optional_home();
  {
    auto lock = fs::FileLock::acquire(lock_path(path), lock_wait);
    if (!lock) return std::move(lock).error();
    if (fs::exists(path)) {
      return make_error(Exit::kConfig, path +
                                           " already holds an identity; it is kept as it is (to replace it "
                                           "deliberately: game identity import --force)");
    }
    GAME_TRY(create_account(path, home, adopt_key));
  }
  trace.step("created identity in " + path);
  return load_account(path, home, trace);
}

Result<std::string> export_identity(const Account& account) {
  auto key = fs::read_private_file(account.identity.key_path, "private key", kMaxKeyBytes);
  if (!key) return std::move(key).error();
  if (!*key) return make_error(Exit::kConfig, account.identity.key_path + " disappeared");
  std::string text = identity_blob_text(
      IdentityBlob{account.identity.uuid, **key, account.config.default_server, account.config.servers});
  fs::wipe(**key);
  return text;
}

Result<std::string> import_identity(const std::string& path, const std::string& text, bool force,
                                    std::chrono::milliseconds lock_wait, Trace& trace) {
  const std::string home = optional_home();
  auto blob = parse_identity_blob(text, "identity import");
  if (!blob) return std::move(blob).error();
  auto key = decode_private(blob->private_key, "");
  if (!key) return std::move(key).error();
  auto pub = public_of(key->get());
  if (!pub) return std::move(pub).error();
  GAME_TRY(check_key_type(pub->get(), "the imported key"));

  auto lock = fs::FileLock::acquire(lock_path(path), lock_wait);
  if (!lock) return std::move(lock).error();
  std::optional<std::string> config_text;
  std::string kept;       // the copy of the replaced config
  std::string kept_note;  // where the replaced identity is, for the confirmation
  if (fs::exists(path)) {
    auto current = read_config(path);
    if (!current) return std::move(current).error();
    auto old_key_path = expand_key_path(current->key, home, path);
    if (!old_key_path) return std::move(old_key_path).error();
    auto old_key = fs::read_file(*old_key_path, kMaxKeyBytes);
    if (!old_key) return std::move(old_key).error();
    const bool same = current->uuid == blob->uuid && *old_key && **old_key == blob->private_key;
    if (*old_key) fs::wipe(**old_key);
    if (same) return std::string("identity " + blob->uuid + " is already the one in " + path);
    if (!force) {
      return make_error(Exit::kConfig,
                        path + " holds another identity (" + current->uuid +
                            "); refusing to replace it. To replace it deliberately, use --force: "
                            "the current config is then kept aside as " +
                            path +
                            ".replaced-TIME, "
                            "and its key where it is");
    }
    auto now = fs::read_file(path, kMaxConfigBytes);
    if (!now) return std::move(now).error();
    if (!*now) return make_error(Exit::kConfig, path + " disappeared while importing");
    config_text = std::move(*now);
    // A copy first: the old config stays in place (and usable) until the new one replaces it.
    kept = aside_path(path);
    GAME_TRY(fs::create_file_exclusive(kept, *config_text, 0600));
    kept_note = "; the old identity " + current->uuid + " is kept in " + kept + " (its key stays at " +
                *old_key_path + ")";
  }
  const std::string key_path = import_key_path(path, blob->uuid);
  const std::string key_value = fs::abbreviate_home(key_path, home);
  Status written = write_key_files(key_path, blob->private_key, key->get(), blob->uuid);
  const bool key_written = static_cast<bool>(written);  // else write_key_files left nothing
  if (key_written && !config_text) {
    written = create_config(path, blob->uuid, key_value, blob->servers);
  } else if (key_written) {
    auto edited = with_imported_identity(*config_text, path, blob->uuid, key_value, blob->servers);
    written = edited ? fs::write_file_atomic(path, *edited, 0600) : Status(std::move(edited).error());
  }
  if (!written) {
    // The config still names the old key (or does not exist): undo the rest, and nothing changed.
    if (key_written) remove_key_files(key_path);
    if (!kept.empty()) ::unlink(kept.c_str());
    Error error = std::move(written).error();
    error.message += "; " + path + " is unchanged";
    return error;
  }
  trace.step("imported identity " + blob->uuid);
  return std::string("imported identity " + blob->uuid + " into " + path + kept_note);
}

}  // namespace game
