// OpenSSL set-up that must happen before anything else touches libcrypto (libssh included).
#pragma once

#include <string_view>

namespace game {

// Initialises OpenSSL without reading any openssl.cnf: neither the host's (a static binary's
// compiled-in OPENSSLDIR may not exist, or may belong to another OpenSSL that configures
// engines or provider modules the binary must not dlopen) nor one named by $OPENSSL_CONF.
// The client uses only algorithms built into libcrypto's default provider (in the static
// build, a trimmed copy of it: crypto_init.cc). Call it first thing
// in main(); later implicit initialisations by libssh then find OpenSSL already set up and
// cannot load a configuration any more. Returns false if OpenSSL could not be initialised.
bool init_crypto();

// libssh decodes an OpenSSH key itself, with the ciphers SSH uses; a PEM key (PKCS#1, SEC 1,
// PKCS#8) goes to OpenSSL's decoders, encrypted with whatever cipher its creator chose. For such
// a key this makes every cipher of the default provider available, and enters the cipher a
// traditional encrypted PEM key names ("DEK-Info:") in the legacy table that init_crypto()
// leaves empty. Call it before handing the text to libssh. Returns false if OpenSSL's default
// provider could not be loaded.
[[nodiscard]] bool prepare_key_decoding(std::string_view key_text);

}  // namespace game
