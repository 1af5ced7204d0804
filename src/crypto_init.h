// OpenSSL set-up that must happen before anything else touches libcrypto (libssh included).
#pragma once

#include <string_view>

namespace game {

// Initialises OpenSSL without reading any openssl.cnf: neither the host's (a static binary's
// compiled-in OPENSSLDIR may not exist, or may belong to another OpenSSL that configures
// engines or provider modules the binary must not dlopen) nor one named by $OPENSSL_CONF.
// The client uses only algorithms built into libcrypto's default provider. Call it first thing
// in main(); later implicit initialisations by libssh then find OpenSSL already set up and
// cannot load a configuration any more. Returns false if OpenSSL could not be initialised.
bool init_crypto();

// A traditional encrypted PEM key ("Proc-Type: 4,ENCRYPTED") names its cipher in its DEK-Info
// header, and OpenSSL looks that name up with EVP_get_cipherbyname(), in the legacy table that
// init_crypto() leaves empty: this enters that one cipher, when `key_text` is such a key. Call
// it before handing the text to libssh; any other text is left alone.
void register_pem_cipher(std::string_view key_text);

}  // namespace game
