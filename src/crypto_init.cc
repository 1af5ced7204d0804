#include "crypto_init.h"

#include <openssl/crypto.h>

namespace game {

bool init_crypto() {
  // OPENSSL_init_crypto() runs its config step once per process: this call consumes it with
  // "no config", so the implicit OPENSSL_INIT_LOAD_CONFIG of later calls has no effect.
  // OpenSSL's error strings are not loaded either: libssh reports its own messages, and loading
  // them is a measurable part of a single invocation's start-up (docs/PERFORMANCE.md). Nor is
  // OpenSSL's atexit clean-up registered: it frees, at exit, what the kernel frees anyway, and
  // was 7 % of one invocation's instructions; the process keeps no OpenSSL state that must be
  // flushed (no files, no engines).
  return OPENSSL_init_crypto(
             OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_NO_ATEXIT,
             nullptr) == 1;
}

}  // namespace game
