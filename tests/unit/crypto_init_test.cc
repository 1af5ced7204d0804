#include "crypto_init.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include <cstdio>
#include <cstdlib>

namespace {

bool cipher_available(const char* name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  EVP_CIPHER_free(cipher);
  return cipher != nullptr;
}

bool digest_available(const char* name) {
  EVP_MD* digest = EVP_MD_fetch(nullptr, name, nullptr);
  EVP_MD_free(digest);
  return digest != nullptr;
}

// The first check that does not hold, or nullptr. The static build offers SSH's algorithms only
// (src/crypto_init.cc) until a PEM key is met; a dynamic build has the whole default provider.
const char* first_failed_check() {
  if (!game::init_crypto()) return "init_crypto() failed";
  if (!cipher_available("AES-256-GCM") || !cipher_available("ChaCha20")) return "an SSH cipher is missing";
  if (!digest_available("SHA2-256")) return "SHA2-256 is missing";
#if GAME_LIBCRYPTO_ARCHIVE
  if (OSSL_PROVIDER_available(nullptr, "game-default") != 1) return "game-default is not loaded";
  if (OSSL_PROVIDER_available(nullptr, "default") == 1)
    return "the whole default provider is loaded at start";
  if (cipher_available("CAMELLIA-256-CBC")) return "Camellia is offered before any PEM key";
  if (digest_available("MD5")) return "MD5 is offered before any PEM key";
  if (!game::prepare_key_decoding("-----BEGIN OPENSSH PRIVATE KEY-----\n")) return "OpenSSH key: false";
  if (cipher_available("CAMELLIA-256-CBC")) return "an OpenSSH key loaded the whole default provider";
#endif
  if (!game::prepare_key_decoding("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")) return "PEM key: false";
  if (!cipher_available("CAMELLIA-256-CBC")) return "Camellia is missing after a PEM key";
  return nullptr;
}

// OpenSSL sets its providers up once per process, and other tests use OpenSSL: the checks run in
// a process of their own (the "threadsafe" death-test style starts the test binary anew).
TEST(CryptoInit, SshAlgorithmsOnlyUntilAPemKeyInTheStaticBuild) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const char* failed = first_failed_check();
        if (failed != nullptr) std::fprintf(stderr, "%s\n", failed);
        std::exit(failed == nullptr ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
