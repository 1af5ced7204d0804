#include "crypto_init.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include <string>

namespace game {

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
                             nullptr) == 1;
}

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

}  // namespace game
