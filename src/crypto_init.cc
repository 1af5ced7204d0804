#include "crypto_init.h"

#include <openssl/crypto.h>

namespace game {

bool init_crypto() {
  // OPENSSL_init_crypto() runs its config step once per process: this call consumes it with
  // "no config", so the implicit OPENSSL_INIT_LOAD_CONFIG of later calls has no effect.
  return OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr) == 1;
}

}  // namespace game
