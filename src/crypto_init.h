// OpenSSL set-up that must happen before anything else touches libcrypto (libssh included).
#pragma once

namespace game {

// Initialises OpenSSL without reading any openssl.cnf: neither the host's (a static binary's
// compiled-in OPENSSLDIR may not exist, or may belong to another OpenSSL that configures
// engines or provider modules the binary must not dlopen) nor one named by $OPENSSL_CONF.
// The client uses only algorithms built into libcrypto's default provider. Call it first thing
// in main(); later implicit initialisations by libssh then find OpenSSL already set up and
// cannot load a configuration any more. Returns false if OpenSSL could not be initialised.
bool init_crypto();

}  // namespace game
