// RAII owners for libssh's handles. Every raw libssh handle in the program lives in one of these.
#pragma once

#include <libssh/libssh.h>

#include <memory>

namespace game {

struct SshKeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
struct SshStringFree {
  void operator()(char* s) const { ssh_string_free_char(s); }
};
struct SshHashFree {
  void operator()(unsigned char* h) const { ssh_clean_pubkey_hash(&h); }
};

using SshKey = std::unique_ptr<std::remove_pointer_t<ssh_key>, SshKeyFree>;
using SshChars = std::unique_ptr<char, SshStringFree>;

}  // namespace game
