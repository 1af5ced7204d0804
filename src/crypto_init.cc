#include "crypto_init.h"

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>

#include <algorithm>
#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#if GAME_LIBCRYPTO_ARCHIVE
// The default provider's entry point: inside libcrypto.a, but not exported by libcrypto.so.
extern "C" OSSL_provider_init_fn ossl_default_provider_init;
#endif

namespace game {

namespace {

#if GAME_LIBCRYPTO_ARCHIVE
// OpenSSL 3 builds its table of an operation's algorithms (ciphers, digests, key types...) on the
// first fetch of any of them, one method object for every algorithm the providers offer: 124
// ciphers, 22 digests, 18 key types... in the default provider, where SSH uses a handful. That
// was 3.2 M instructions of one `game score`, nearly a third (docs/PERFORMANCE.md). So the client
// runs the default provider's code under its own name, "game-default": its own init function
// sets it up, and it offers every operation as the default provider does except that the
// tables of the operations below list only these algorithms (by their first name). The fetches
// OpenSSL makes inside (the random generator's AES-256-CTR, HMAC's digest) go through the same
// library context, so they see the same tables. A PEM key, which may name any cipher, loads the
// whole default provider beside it: see prepare_key_decoding(). The static build's run of
// tests/integration (test_foundation.Algorithms, test_harden.PassphrasePrompt) negotiates each
// cipher, MAC, key exchange and key type the client offers and decrypts OpenSSH keys with each
// of libssh's ciphers, which is what keeps these lists complete; an OpenSSL without
// ossl_default_provider_init fails to link.
struct Allowed {
  int operation;
  std::span<const std::string_view> names;
};
// What src/transport.cc offers (AES-256-CTR and -ECB are also the random generator's), then the
// others libssh can decrypt an OpenSSH key with.
constexpr auto kCiphers = std::to_array<std::string_view>(
    {"AES-128-GCM", "AES-256-GCM", "ChaCha20", "AES-128-CTR", "AES-192-CTR", "AES-256-CTR", "AES-256-ECB",
     "AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "DES-EDE3-CBC"});
// Signatures (ssh-rsa's SHA-1 to rsa-sha2-512's, Ed25519's SHA-512), key exchanges, HMACs,
// fingerprints, bcrypt's SHA-512 for an encrypted OpenSSH key.
constexpr auto kDigests = std::to_array<std::string_view>({"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"});
constexpr auto kMacs = std::to_array<std::string_view>({"HMAC", "POLY1305"});
constexpr auto kKdfs = std::to_array<std::string_view>({"SSHKDF"});
constexpr auto kRands = std::to_array<std::string_view>({"CTR-DRBG", "SEED-SRC"});
// Host and user keys (DSA so that libssh can read such a key and the client refuse it by name),
// the key exchanges' keys (libssh makes its finite-field ones as X9.42 DH, "DHX"), and HMAC keys
// for libssh's HMAC, which signs with them.
constexpr auto kKeyTypes =
    std::to_array<std::string_view>({"RSA", "DSA", "EC", "ED25519", "X25519", "DHX", "HMAC"});
constexpr auto kKeyExchanges = std::to_array<std::string_view>({"DH", "ECDH", "X25519"});
constexpr auto kSignatures = std::to_array<std::string_view>({"RSA", "ECDSA", "ED25519", "HMAC"});
constexpr std::array<Allowed, 8> kAllowed = {{{OSSL_OP_CIPHER, kCiphers},
                                              {OSSL_OP_DIGEST, kDigests},
                                              {OSSL_OP_MAC, kMacs},
                                              {OSSL_OP_KDF, kKdfs},
                                              {OSSL_OP_RAND, kRands},
                                              {OSSL_OP_KEYMGMT, kKeyTypes},
                                              {OSSL_OP_KEYEXCH, kKeyExchanges},
                                              {OSSL_OP_SIGNATURE, kSignatures}}};

// The provider's dispatch table and trimmed algorithm tables, made by its init function and
// never freed: OpenSSL keeps pointers into them as long as the process runs (the client does not
// run OpenSSL's clean-up), and its fetches are not locked against a table being filled, so none
// is filled later.
struct TrimmedProvider {
  OSSL_FUNC_provider_query_operation_fn* query = nullptr;  // the default provider's
  std::vector<OSSL_DISPATCH> dispatch;
  std::array<std::vector<OSSL_ALGORITHM>, kAllowed.size()> tables;
};
const TrimmedProvider* trimmed = nullptr;

std::vector<OSSL_ALGORITHM> keep_only(const OSSL_ALGORITHM* all, std::span<const std::string_view> names) {
  std::vector<OSSL_ALGORITHM> kept;
  for (const OSSL_ALGORITHM* a = all; a != nullptr && a->algorithm_names != nullptr; ++a) {
    const std::string_view aliases = a->algorithm_names;
    if (std::find(names.begin(), names.end(), aliases.substr(0, aliases.find(':'))) != names.end())
      kept.push_back(*a);
  }
  kept.push_back(OSSL_ALGORITHM{});
  return kept;
}

const OSSL_ALGORITHM* trimmed_query(void* provctx, int operation, int* no_cache) {
  for (std::size_t i = 0; i < kAllowed.size(); ++i) {
    if (kAllowed[i].operation != operation) continue;
    *no_cache = 0;
    return trimmed->tables[i].data();
  }
  return trimmed->query(provctx, operation, no_cache);  // encoders, decoders...: as they are
}

int trimmed_init(const OSSL_CORE_HANDLE* handle, const OSSL_DISPATCH* in, const OSSL_DISPATCH** out,
                 void** provctx) {
  if (trimmed != nullptr) return 0;  // one instance per process: the tables are shared
  const OSSL_DISPATCH* full = nullptr;
  if (ossl_default_provider_init(handle, in, &full, provctx) != 1) return 0;
  auto made = std::make_unique<TrimmedProvider>();
  for (const OSSL_DISPATCH* d = full; d->function_id != 0; ++d) {
    if (d->function_id != OSSL_FUNC_PROVIDER_QUERY_OPERATION) {
      made->dispatch.push_back(*d);
      continue;
    }
    made->query = OSSL_FUNC_provider_query_operation(d);
    made->dispatch.push_back({d->function_id, reinterpret_cast<void (*)()>(trimmed_query)});
  }
  made->dispatch.push_back(OSSL_DISPATCH{});
  if (made->query == nullptr) return 0;
  for (std::size_t i = 0; i < kAllowed.size(); ++i) {
    int no_cache = 0;
    made->tables[i] = keep_only(made->query(*provctx, kAllowed[i].operation, &no_cache), kAllowed[i].names);
  }
  *out = made->dispatch.data();
  trimmed = made.release();
  return 1;
}

// Loading any provider explicitly turns off the implicit load of "default".
bool load_trimmed_provider() {
  return OSSL_PROVIDER_add_builtin(nullptr, "game-default", trimmed_init) == 1 &&
         OSSL_PROVIDER_load(nullptr, "game-default") != nullptr;
}

bool load_whole_provider() {
  static const bool loaded = OSSL_PROVIDER_load(nullptr, "default") != nullptr;
  return loaded;
}
#else
bool load_trimmed_provider() { return true; }  // libcrypto.so: the default provider as it is
bool load_whole_provider() { return true; }
#endif

// A traditional encrypted PEM key ("Proc-Type: 4,ENCRYPTED") names its cipher in its DEK-Info
// header, and OpenSSL looks that name up with EVP_get_cipherbyname(), in the legacy table that
// init_crypto() leaves empty: this enters that one cipher.
void register_pem_cipher(std::string_view key_text) {
  constexpr std::string_view kHeader = "DEK-Info:";
  const std::size_t header = key_text.find(kHeader);
  if (header == std::string_view::npos) return;
  const std::size_t begin = key_text.find_first_not_of(" \t", header + kHeader.size());
  const std::size_t end = key_text.find_first_of(",\r\n", begin);
  if (begin == std::string_view::npos || end == std::string_view::npos) return;
  const std::string name(key_text.substr(begin, end - begin));
  if (EVP_get_cipherbyname(name.c_str()) != nullptr) return;
  // The table holds pointers to names that live as long as the process: the cipher's own short
  // and long names from OpenSSL's object table (OpenSSL writes the short one in DEK-Info). Not
  // EVP_add_cipher(): a fetched cipher has no legacy NID without the table. An unknown name is
  // left to the decoder to report, as before.
  int nid = OBJ_sn2nid(name.c_str());
  if (nid == NID_undef) nid = OBJ_ln2nid(name.c_str());
  if (nid == NID_undef) return;
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name.c_str(), nullptr);  // kept: the table uses it
  if (cipher == nullptr) return;
  const char* data = reinterpret_cast<const char*>(cipher);
  OBJ_NAME_add(OBJ_nid2sn(nid), OBJ_NAME_TYPE_CIPHER_METH, data);
  OBJ_NAME_add(OBJ_nid2ln(nid), OBJ_NAME_TYPE_CIPHER_METH, data);
}

}  // namespace

bool init_crypto() {
  // OPENSSL_init_crypto() runs its config step once per process: this call consumes it with
  // "no config", so the implicit OPENSSL_INIT_LOAD_CONFIG of later calls has no effect.
  // OpenSSL's error strings are not loaded either: libssh reports its own messages, and loading
  // them is a measurable part of a single invocation's start-up (docs/PERFORMANCE.md). Nor is
  // OpenSSL's atexit clean-up registered: it frees, at exit, what the kernel frees anyway, and
  // was 7 % of one invocation's instructions; the process keeps no OpenSSL state that must be
  // flushed (no files, no engines).
  // Nor is the legacy table of every cipher and digest filled (the same once-only step, consumed
  // with "none"): OpenSSL's first fetch would copy all of its names, and their OIDs printed as
  // text, into the name map, 3.1 M instructions, 23 % of one `game score`. Fetches by name (all
  // libssh does) find the names the default provider gives its algorithms; only
  // EVP_get_cipherbyname() reads the table, for a traditional encrypted PEM key: see
  // register_pem_cipher().
  return OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
                                 OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
                                 OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
                             nullptr) == 1 &&
         load_trimmed_provider();
}

bool prepare_key_decoding(std::string_view key_text) {
  if (key_text.find("-----BEGIN OPENSSH PRIVATE KEY-----") != std::string_view::npos) return true;
  if (!load_whole_provider()) return false;
  register_pem_cipher(key_text);
  return true;
}

}  // namespace game
