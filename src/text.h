// Small text helpers shared by the protocol, batch and output code.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace game::text {

bool is_valid_utf8(std::string_view s);
std::string to_hex(std::string_view bytes);
// The bytes of lowercase or uppercase hex digits; nullopt for an odd length or a non-digit.
std::optional<std::string> from_hex(std::string_view hex);
// Makes untrusted text (e.g. a server's reason) safe to print on a terminal: control characters
// and invalid UTF-8 become \xNN escapes, so a hostile server cannot inject escape sequences.
std::string printable(std::string_view s);
std::string_view trim(std::string_view s);
// `s` as one word for a POSIX shell: unchanged when it has no special characters, else in single
// quotes (a ' inside becomes '\''), so that a printed command works when pasted.
std::string shell_quote(std::string_view s);

}  // namespace game::text

namespace game::text {
// 8-4-4-4-12 hexadecimal digits.
bool is_uuid(std::string_view s);
// An OpenSSH SHA256 fingerprint: "SHA256:" and 43 unpadded base64 digits.
bool is_fingerprint(std::string_view s);
}  // namespace game::text
