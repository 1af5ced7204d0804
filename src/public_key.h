// SSH public keys as the account commands show and send them: the wire blob (RFC 4253 6.6) that
// protocol 2 carries, the OpenSSH `TYPE BASE64` line a player copies between devices, and the
// facts `ssh-keygen -l` prints about a key.
#pragma once

#include <string>
#include <string_view>

#include "error.h"

namespace game {

struct PublicKey {
  std::string blob;  // string type name, then the key data
  std::string type;  // "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"

  // Parses "TYPE BASE64 [COMMENT]", as in an OpenSSH .pub file; the key must decode.
  static Result<PublicKey> from_line(std::string_view line);
  // Takes a blob the server sent; a blob that does not name its type is an error.
  static Result<PublicKey> from_blob(std::string blob);

  std::string line() const;         // "TYPE BASE64"
  std::string fingerprint() const;  // "SHA256:...", unpadded base64 as ssh-keygen prints it
  int bits() const;                 // 256 for ed25519, the curve's size, the RSA modulus's size
  std::string kind() const;         // "ED25519", "ECDSA", "RSA": ssh-keygen -l's last column
};

}  // namespace game
