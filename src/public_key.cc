#include "public_key.h"

#include <libssh/libssh.h>
#include <openssl/evp.h>

#include <cstdint>
#include <optional>

#include "ssh_handles.h"

namespace game {
namespace {

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

// The `index`-th SSH `string` (uint32 length, then bytes) of a blob.
std::optional<std::string_view> blob_string(std::string_view blob, int index) {
  for (int i = 0;; ++i) {
    if (blob.size() < 4) return std::nullopt;
    const auto* p = reinterpret_cast<const unsigned char*>(blob.data());
    const std::uint32_t length = (std::uint32_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (blob.size() - 4 < length) return std::nullopt;
    if (i == index) return blob.substr(4, length);
    blob.remove_prefix(4 + length);
  }
}

}  // namespace

Result<PublicKey> PublicKey::from_line(std::string_view line) {
  const auto bad = [&](const std::string& why) {
    return make_error(Exit::kUsage, "not an SSH public key ('TYPE BASE64', as in a .pub file): " + why);
  };
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  const std::size_t space = line.find_first_of(" \t");
  if (space == std::string_view::npos) return bad("no key data after the type");
  const std::string type(line.substr(0, space));
  std::string_view rest = line.substr(space);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  const std::string data(rest.substr(0, rest.find_first_of(" \t\r\n")));
  ssh_key raw = nullptr;
  const enum ssh_keytypes_e kind = ssh_key_type_from_name(type.c_str());
  if (kind == SSH_KEYTYPE_UNKNOWN) return bad("unknown key type '" + type + "'");
  if (ssh_pki_import_pubkey_base64(data.c_str(), kind, &raw) != SSH_OK)
    return bad("the key data does not decode");
  const SshKey key(raw);
  auto blob = unbase64(data);
  if (!blob) return bad("the key data is not base64");
  auto parsed = from_blob(std::move(*blob));
  if (!parsed || parsed->type != type) return bad("the key data is not a " + type + " key");
  return parsed;
}

Result<PublicKey> PublicKey::from_blob(std::string blob) {
  const auto type = blob_string(blob, 0);
  if (!type || type->empty()) return make_error(Exit::kProtocol, "an SSH public key blob without a type");
  PublicKey key;
  key.type = std::string(*type);
  key.blob = std::move(blob);
  return key;
}

std::string PublicKey::line() const { return type + " " + base64(blob); }

std::string PublicKey::fingerprint() const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(blob.data(), blob.size(), digest, &size, EVP_sha256(), nullptr);
  std::string text = base64(std::string_view(reinterpret_cast<const char*>(digest), size));
  while (!text.empty() && text.back() == '=') text.pop_back();
  return "SHA256:" + text;
}

int PublicKey::bits() const {
  if (type == "ecdsa-sha2-nistp384") return 384;
  if (type == "ecdsa-sha2-nistp521") return 521;
  if (type != "ssh-rsa") return 256;  // ed25519, nistp256
  // string "ssh-rsa", mpint e, mpint n: the modulus's bits, leading zero bytes not counted.
  std::string_view n = blob_string(blob, 2).value_or(std::string_view());
  while (!n.empty() && n.front() == '\0') n.remove_prefix(1);
  if (n.empty()) return 0;
  int bits = static_cast<int>(n.size() - 1) * 8;
  for (auto top = static_cast<unsigned char>(n.front()); top != 0; top >>= 1) ++bits;
  return bits;
}

std::string PublicKey::kind() const {
  if (type == "ssh-ed25519") return "ED25519";
  if (type.rfind("ecdsa-", 0) == 0) return "ECDSA";
  if (type == "ssh-rsa") return "RSA";
  return type;
}

}  // namespace game
