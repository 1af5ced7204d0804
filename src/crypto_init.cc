#include "crypto_init.h"

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>

#include <algorithm>
#include <array>
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
// runs the default provider's code under its own name, "game-default", offering every operation
// as the default provider does except that the tables below list only these algorithms (by
// their first name). The handle and the provider context are the default provider's own, so the
// fetches OpenSSL makes inside (the random generator's AES-256-CTR, HMAC's digest) see the same
// trimmed tables. A PEM key, which may name any cipher, loads the whole default provider beside
// it: see prepare_key_decoding(). tests/integration/test_foundation.py (Algorithms) negotiates
// each cipher, MAC, key exchange and key type the client offers, so a name missing here fails
// there; an OpenSSL without ossl_default_provider_init fails to link.
struct TrimmedTable {
  int operation;
  std::vector<std::string_view> names;
  std::vector<OSSL_ALGORITHM> kept;  // filled on the first query
};

std::array<TrimmedTable, 8>& trimmed_tables() {
  static std::array<TrimmedTable, 8> tables = {{
      // What src/transport.cc offers (AES-256-CTR and -ECB are also the random generator's),
      // then libssh's other ciphers, which an encrypted OpenSSH key may name.
      {OSSL_OP_CIPHER,
       {"AES-128-GCM", "AES-256-GCM", "ChaCha20", "AES-128-CTR", "AES-192-CTR", "AES-256-CTR", "AES-256-ECB",
        "AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "DES-EDE3-CBC"},
       {}},
      // Signatures (ssh-rsa's SHA-1 to rsa-sha2-512's, Ed25519's SHA-512), key exchanges, HMACs,
      // fingerprints.
      {OSSL_OP_DIGEST, {"SHA1", "SHA2-256", "SHA2-384", "SHA2-512"}, {}},
      {OSSL_OP_MAC, {"HMAC", "POLY1305"}, {}},
      // SSH's key derivation; PBKDF2 of PKCS#8 keys.
      {OSSL_OP_KDF, {"SSHKDF", "PBKDF2"}, {}},
      {OSSL_OP_RAND, {"CTR-DRBG", "SEED-SRC"}, {}},
      // Host and user keys (DSA as libssh may still read it), key exchanges (the finite-field
      // ones fail without X9.42 DH, "DHX", beside DH), and the MAC keys of the MAC-as-signature adapters
      // libssh's
      // HMAC and Poly1305 may use.
      {OSSL_OP_KEYMGMT, {"RSA", "DSA", "EC", "ED25519", "X25519", "DH", "DHX", "HMAC", "POLY1305"}, {}},
      {OSSL_OP_KEYEXCH, {"DH", "ECDH", "X25519"}, {}},
      {OSSL_OP_SIGNATURE, {"RSA", "DSA", "ECDSA", "ED25519", "HMAC", "POLY1305"}, {}},
  }};
  return tables;
}

OSSL_FUNC_provider_query_operation_fn* default_query = nullptr;
std::vector<OSSL_DISPATCH> trimmed_dispatch;

const OSSL_ALGORITHM* keep_only(const OSSL_ALGORITHM* all, TrimmedTable& table) {
  if (table.kept.empty()) {
    for (const OSSL_ALGORITHM* a = all; a != nullptr && a->algorithm_names != nullptr; ++a) {
      const std::string_view aliases = a->algorithm_names;
      const std::string_view first = aliases.substr(0, aliases.find(':'));
      if (std::find(table.names.begin(), table.names.end(), first) != table.names.end())
        table.kept.push_back(*a);
    }
    table.kept.push_back(OSSL_ALGORITHM{});
  }
  return table.kept.data();
}

const OSSL_ALGORITHM* trimmed_query(void* provctx, int operation, int* no_cache) {
  const OSSL_ALGORITHM* all = default_query(provctx, operation, no_cache);
  for (TrimmedTable& table : trimmed_tables()) {
    if (table.operation == operation) return keep_only(all, table);
  }
  return all;  // encoders, decoders, key encapsulation...: as they are
}

int trimmed_init(const OSSL_CORE_HANDLE* handle, const OSSL_DISPATCH* in, const OSSL_DISPATCH** out,
                 void** provctx) {
  const OSSL_DISPATCH* full = nullptr;
  if (ossl_default_provider_init(handle, in, &full, provctx) != 1) return 0;
  trimmed_dispatch.clear();
  for (const OSSL_DISPATCH* d = full; d->function_id != 0; ++d) {
    if (d->function_id == OSSL_FUNC_PROVIDER_QUERY_OPERATION) {
      default_query = OSSL_FUNC_provider_query_operation(d);
      trimmed_dispatch.push_back({d->function_id, reinterpret_cast<void (*)()>(trimmed_query)});
    } else {
      trimmed_dispatch.push_back(*d);
    }
  }
  trimmed_dispatch.push_back(OSSL_DISPATCH{});
  *out = trimmed_dispatch.data();
  return default_query != nullptr ? 1 : 0;
}

// Loading any provider explicitly turns off the implicit load of "default".
bool load_trimmed_provider() {
  return OSSL_PROVIDER_add_builtin(nullptr, "game-default", trimmed_init) == 1 &&
         OSSL_PROVIDER_load(nullptr, "game-default") != nullptr;
}

void load_whole_provider() {
  static const bool loaded = OSSL_PROVIDER_load(nullptr, "default") != nullptr;
  (void)loaded;  // if it failed, decoding the key says what it could not do
}
#else
bool load_trimmed_provider() { return true; }  // libcrypto.so: the default provider as it is
void load_whole_provider() {}
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

void prepare_key_decoding(std::string_view key_text) {
  if (key_text.find("-----BEGIN OPENSSH PRIVATE KEY-----") != std::string_view::npos) return;
  load_whole_provider();
  register_pem_cipher(key_text);
}

}  // namespace game
