// game_bench_floor: the cryptography of one SSH handshake and one request, done cold through
// OpenSSL's public API in a fresh process, the way libssh 0.10 does it for the algorithms the
// client negotiates (curve25519-sha256, ssh-ed25519, and aes256-gcm@openssh.com on an x86 CPU
// with AES and carry-less multiply instructions, else chacha20-poly1305@openssh.com:
// src/transport.cc). Its
// instruction count is the practical floor for one `game score` with this library: bench/run
// compares the client's count with it (docs/PERFORMANCE.md).
//
//   game_bench_floor                exit 0 when every step worked (the signature checks included)
//   game_bench_floor --client-init  the same, with OpenSSL initialised by the client's own
//                                   init_crypto() (src/crypto_init.cc: in a static build, the
//                                   default provider with trimmed algorithm tables, which
//                                   the public API cannot do)
//
// Per step: the DRBG's first use (cookie, padding, the ephemeral key), an X25519 key pair and
// the shared secret, the exchange hash and the six key-derivation hashes (SHA-256), the host
// key's signature verified and the user's signature made (Ed25519), and eight packets each way
// through that cipher. Without --client-init, initialised as the client is as far as the public
// API goes: no config, no error strings, no exit clean-up, no legacy cipher and digest table
// (everything here fetches by name). Linked like the client (static PIE in a static build), so the start-up
// of the executable itself is counted the same way.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "crypto_init.h"

namespace {

using Bytes32 = std::array<unsigned char, 32>;

// A fixed Ed25519 host key and its signature over kSigned (made with `openssl pkeyutl -sign`).
constexpr Bytes32 kHostPublic = {0xf4, 0x40, 0x50, 0xb5, 0xac, 0x72, 0xd6, 0x6f, 0x17, 0xc4, 0xf5,
                                 0x80, 0xc8, 0xfe, 0x09, 0xbc, 0xf0, 0x71, 0x00, 0x71, 0xfc, 0x98,
                                 0x3c, 0x60, 0x22, 0x43, 0x37, 0x86, 0x52, 0x1c, 0xf7, 0xff};
constexpr std::array<unsigned char, 64> kHostSignature = {
    0xaf, 0xaa, 0x64, 0x35, 0x8a, 0x20, 0x73, 0x52, 0x82, 0x2a, 0xf0, 0x1a, 0xb9, 0x1e, 0xd5, 0x68,
    0x34, 0x61, 0x00, 0x74, 0x5f, 0x53, 0x01, 0xdf, 0xea, 0x80, 0x5d, 0x6b, 0xe3, 0x44, 0x40, 0x61,
    0xf5, 0xa4, 0x20, 0x94, 0xc1, 0x79, 0xb5, 0x11, 0xb0, 0xe0, 0x2a, 0xe0, 0xcf, 0x93, 0x03, 0x19,
    0xa3, 0xec, 0x45, 0xc0, 0x6c, 0x54, 0x5c, 0xa4, 0x75, 0x48, 0xae, 0x09, 0xa6, 0xe3, 0xf7, 0x09};
constexpr char kSigned[] = "exchange hash H of the handshake";
// The user's key: any 32-byte seed will do.
constexpr Bytes32 kUserSeed = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                               17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
constexpr int kPackets = 8;

bool fail(const char* step) {
  std::fprintf(stderr, "game_bench_floor: %s failed\n", step);
  return false;
}

// The ephemeral X25519 key pair and the shared secret with the server's (fixed) public value.
bool key_exchange(Bytes32& secret) {
  EVP_PKEY_CTX* gen = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr);
  EVP_PKEY* mine = nullptr;
  const bool made = gen != nullptr && EVP_PKEY_keygen_init(gen) == 1 && EVP_PKEY_keygen(gen, &mine) == 1;
  EVP_PKEY_CTX_free(gen);
  if (!made) return fail("X25519 key generation");
  EVP_PKEY* theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, kHostPublic.data(), 32);
  EVP_PKEY_CTX* derive = EVP_PKEY_CTX_new(mine, nullptr);
  std::size_t len = secret.size();
  const bool ok = theirs != nullptr && derive != nullptr && EVP_PKEY_derive_init(derive) == 1 &&
                  EVP_PKEY_derive_set_peer(derive, theirs) == 1 &&
                  EVP_PKEY_derive(derive, secret.data(), &len) == 1;
  EVP_PKEY_CTX_free(derive);
  EVP_PKEY_free(theirs);
  EVP_PKEY_free(mine);
  return ok || fail("X25519 derivation");
}

// The exchange hash, then the keys (RFC 4253 7.2: six hashes, here of the same length).
bool hashes(const Bytes32& secret, std::array<Bytes32, 6>& keys) {
  Bytes32 exchange_hash{};
  unsigned len = 0;
  if (EVP_Digest(secret.data(), secret.size(), exchange_hash.data(), &len, EVP_sha256(), nullptr) != 1)
    return fail("SHA-256");
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::array<unsigned char, 65> input{};
    std::memcpy(input.data(), secret.data(), 32);
    input[32] = static_cast<unsigned char>('A' + i);
    std::memcpy(input.data() + 33, exchange_hash.data(), 32);
    if (EVP_Digest(input.data(), input.size(), keys[i].data(), &len, EVP_sha256(), nullptr) != 1)
      return fail("SHA-256");
  }
  return true;
}

bool verify_host_key() {
  EVP_PKEY* host = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, kHostPublic.data(), 32);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = host != nullptr && ctx != nullptr &&
                  EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, host) == 1 &&
                  EVP_DigestVerify(ctx, kHostSignature.data(), kHostSignature.size(),
                                   reinterpret_cast<const unsigned char*>(kSigned), sizeof kSigned - 1) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(host);
  return ok || fail("Ed25519 verification of the host key's signature");
}

bool sign_user_auth() {
  EVP_PKEY* user = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, kUserSeed.data(), 32);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::array<unsigned char, 64> signature{};
  std::size_t len = signature.size();
  const bool ok = user != nullptr && ctx != nullptr &&
                  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, user) == 1 &&
                  EVP_DigestSign(ctx, signature.data(), &len, reinterpret_cast<const unsigned char*>(kSigned),
                                 sizeof kSigned - 1) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(user);
  return ok || fail("Ed25519 signature");
}

// One packet as chacha20-poly1305@openssh.com does it: the Poly1305 key from block 0 of the
// stream, the payload encrypted from block 1, the tag over the ciphertext.
bool packet(EVP_CIPHER_CTX* cipher, EVP_MAC* poly1305, const Bytes32& key, unsigned sequence) {
  std::array<unsigned char, 16> iv{};
  iv[15] = static_cast<unsigned char>(sequence);
  std::array<unsigned char, 64> block0{};
  std::array<unsigned char, 64> payload{};
  std::array<unsigned char, 64> sealed{};
  int len = 0;
  if (EVP_EncryptInit_ex(cipher, EVP_chacha20(), nullptr, key.data(), iv.data()) != 1 ||
      EVP_EncryptUpdate(cipher, block0.data(), &len, block0.data(), static_cast<int>(block0.size())) != 1 ||
      EVP_EncryptUpdate(cipher, sealed.data(), &len, payload.data(), static_cast<int>(payload.size())) != 1)
    return fail("ChaCha20");
  EVP_MAC_CTX* mac = EVP_MAC_CTX_new(poly1305);
  std::array<unsigned char, 16> tag{};
  std::size_t tag_len = 0;
  const bool ok = mac != nullptr && EVP_MAC_init(mac, block0.data(), 32, nullptr) == 1 &&
                  EVP_MAC_update(mac, sealed.data(), sealed.size()) == 1 &&
                  EVP_MAC_final(mac, tag.data(), &tag_len, tag.size()) == 1;
  EVP_MAC_CTX_free(mac);
  return ok || fail("Poly1305");
}

// One packet as aes256-gcm@openssh.com does it in libssh (RFC 5647): the invocation counter of
// the IV advanced, the packet length as additional data, the rest encrypted, the tag.
bool gcm_packet(EVP_CIPHER_CTX* cipher) {
  std::array<unsigned char, 12> iv{};
  std::array<unsigned char, 4> length{0, 0, 0, 64};
  std::array<unsigned char, 64> payload{};
  std::array<unsigned char, 64> sealed{};
  std::array<unsigned char, 16> tag{};
  int len = 0;
  const bool ok =
      EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_IV_GEN, 1, iv.data()) == 1 &&
      EVP_EncryptUpdate(cipher, nullptr, &len, length.data(), static_cast<int>(length.size())) == 1 &&
      EVP_EncryptUpdate(cipher, sealed.data(), &len, payload.data(), static_cast<int>(payload.size())) == 1 &&
      EVP_EncryptFinal_ex(cipher, sealed.data() + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()), tag.data()) == 1;
  return ok || fail("AES-256-GCM");
}

// The key and the fixed part of the IV set once per direction, as at NEWKEYS.
EVP_CIPHER_CTX* gcm_context(const Bytes32& key, const Bytes32& iv) {
  EVP_CIPHER_CTX* cipher = EVP_CIPHER_CTX_new();
  if (cipher != nullptr && EVP_EncryptInit_ex(cipher, EVP_aes_256_gcm(), nullptr, key.data(), nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_IV_FIXED, -1, const_cast<unsigned char*>(iv.data())) == 1)
    return cipher;
  EVP_CIPHER_CTX_free(cipher);
  return nullptr;
}

bool gcm_packets(const std::array<Bytes32, 6>& keys) {
  EVP_CIPHER_CTX* out = gcm_context(keys[2], keys[0]);
  EVP_CIPHER_CTX* in = gcm_context(keys[3], keys[1]);
  bool ok = (out != nullptr && in != nullptr) || fail("AES-256-GCM keys");
  for (unsigned i = 0; ok && i < kPackets; ++i) {
    std::array<unsigned char, 16> padding{};
    ok = RAND_bytes(padding.data(), static_cast<int>(padding.size())) == 1 && gcm_packet(out) &&
         gcm_packet(in);
  }
  EVP_CIPHER_CTX_free(in);
  EVP_CIPHER_CTX_free(out);
  return ok;
}

bool chacha_packets(const std::array<Bytes32, 6>& keys) {
  EVP_CIPHER_CTX* cipher = EVP_CIPHER_CTX_new();
  EVP_MAC* poly1305 = EVP_MAC_fetch(nullptr, "POLY1305", nullptr);
  bool ok = cipher != nullptr && poly1305 != nullptr;
  for (unsigned i = 0; ok && i < kPackets; ++i) {
    std::array<unsigned char, 16> padding{};
    ok = RAND_bytes(padding.data(), static_cast<int>(padding.size())) == 1 &&
         packet(cipher, poly1305, keys[2], i) && packet(cipher, poly1305, keys[3], i);
  }
  EVP_MAC_free(poly1305);
  EVP_CIPHER_CTX_free(cipher);
  return ok;
}

// The client's rule (src/transport.cc: cipher_preference).
bool packets(const std::array<Bytes32, 6>& keys) {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul")) return gcm_packets(keys);
#endif
  return chacha_packets(keys);
}

// Initialised like the client (src/crypto_init.cc), through the public API only.
bool init_public() {
  return OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
                                 OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
                                 OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
                             nullptr) == 1;
}

}  // namespace

int main(int argc, char** argv) {
  const bool client_init = argc == 2 && std::strcmp(argv[1], "--client-init") == 0;
  if (argc > 2 || (argc == 2 && !client_init)) {
    std::fprintf(stderr, "usage: game_bench_floor [--client-init]\n");
    return 64;
  }
  if (!(client_init ? game::init_crypto() : init_public())) return fail("OpenSSL initialisation") ? 0 : 1;
  std::array<unsigned char, 16> cookie{};
  Bytes32 secret{};
  std::array<Bytes32, 6> keys{};
  const bool ok = RAND_bytes(cookie.data(), static_cast<int>(cookie.size())) == 1 && key_exchange(secret) &&
                  hashes(secret, keys) && verify_host_key() && sign_user_auth() && packets(keys);
  return ok ? 0 : 1;
}
