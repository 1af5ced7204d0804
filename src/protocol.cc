// The only translation unit that sees asn1c's generated headers: they define macros (MIN,
// MALLOC, FREEMEM) that must not leak into the rest of the program.
#include "protocol.h"

#include <charconv>
#include <cstring>
#include <memory>

#include "text.h"

extern "C" {
#include <Request.h>
#include <Response.h>
#include <ber_tlv_length.h>
#include <ber_tlv_tag.h>
}

namespace game::protocol {
namespace {

// der_encode's output callback: appends each piece of the encoding to the caller's string, so a
// PDU of any length is encoded without a size guess.
int append_to_string(const void* data, size_t size, void* out) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return 0;
}

void encode_pdu(Request_t& pdu, std::string& out) {
  const asn_enc_rval_t rv = der_encode(&asn_DEF_Request, &pdu, append_to_string, &out);
  // Encoding a well-formed Request_t cannot fail: the schema has no constraints to violate.
  if (rv.encoded < 0) std::abort();
}

struct ResponseDeleter {
  void operator()(Response_t* r) const { ASN_STRUCT_FREE(asn_DEF_Response, r); }
};

// A Response of at most ResponseReader::kMaxResponseSize bytes needs no more than 3 length
// octets; 4 leave room for an encoder that pads with zeros. More are refused before asn1c's
// ber_fetch_length sees them: it shifts the signed length before checking it for overflow
// (undefined behaviour from 8 octets on, found by tests/fuzz/fuzz_response).
constexpr unsigned kMaxLengthOctets = 4;
// Nesting deeper than any Response can be (CHOICE, SEQUENCE, [0], a few constructed string
// segments): refused, so that ber_decode never recurses far.
constexpr int kMaxDepth = 16;

// Checks the TLV headers inside the contents of a framed PDU before ber_decode sees them:
// single-byte tags, definite lengths of at most kMaxLengthOctets, each inside its parent.
bool inner_headers_ok(const unsigned char* p, std::size_t size, int depth) {
  if (depth > kMaxDepth) return false;
  while (size > 0) {
    if ((p[0] & 0x1f) == 0x1f || size < 2) return false;
    std::size_t header = 2;
    std::size_t length = p[1];
    if (length & 0x80) {
      const std::size_t octets = length & 0x7f;
      if (octets == 0 || octets > kMaxLengthOctets || size < header + octets) return false;
      length = 0;
      for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | p[header + i];
      header += octets;
    }
    if (length > size - header) return false;
    if ((p[0] & 0x20) != 0 && !inner_headers_ok(p + header, length, depth + 1)) return false;
    p += header + length;
    size -= header + length;
  }
  return true;
}

}  // namespace

Result<Request> make_set_username(std::string_view name) {
  if (!text::is_valid_utf8(name)) return make_error(Exit::kDataErr, "name is not valid UTF-8");
  return Request{SetUsername{std::string(name)}};
}

Result<Request> make_add_score(std::string_view decimal) {
  std::int64_t value = 0;
  const char* first = decimal.data();
  const char* last = first + decimal.size();
  // from_chars accepts no '+', no spaces, no exponent and reports overflow: exactly what we want.
  const auto [end, ec] = std::from_chars(first, last, value);
  if (decimal.empty() || ec == std::errc::invalid_argument || end != last) {
    return make_error(Exit::kDataErr, "score '" + text::printable(decimal) + "' is not a whole number");
  }
  if (ec == std::errc::result_out_of_range) {
    return make_error(Exit::kDataErr, "score '" + std::string(decimal) +
                                          "' is out of range (-9223372036854775808 to "
                                          "9223372036854775807)");
  }
  return Request{AddScore{value}};
}

void encode(const Request& request, std::string& out) {
  Request_t pdu;
  std::memset(&pdu, 0, sizeof pdu);
  if (const auto* set = std::get_if<SetUsername>(&request)) {
    pdu.present = Request_PR_setUsername;
    // The OCTET_STRING borrows the name's bytes: der_encode only reads them.
    auto& name = pdu.choice.setUsername.name;
    name.buf = reinterpret_cast<uint8_t*>(const_cast<char*>(set->name.data()));
    name.size = static_cast<int>(set->name.size());
  } else {
    pdu.present = Request_PR_addScore;
    pdu.choice.addScore.value = std::get<AddScore>(request).value;
  }
  encode_pdu(pdu, out);
}

void ResponseReader::feed(const char* data, std::size_t size) {
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  } else if (pos_ > buffer_.size() / 2) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(data, size);
}

Result<std::optional<Response>> ResponseReader::next() {
  const char* p = buffer_.data() + pos_;
  const std::size_t available = buffer_.size() - pos_;
  if (available == 0) return std::optional<Response>{};

  // Frame the outer TLV ourselves: ber_decode would happily wait for (and buffer) a 2 GB PDU.
  // Our schema has only low tag numbers, so a multi-byte tag is refused at once rather than
  // waited for.
  if ((static_cast<unsigned char>(*p) & 0x1f) == 0x1f) {
    return make_error(Exit::kProtocol,
                      "server sent bytes that are not a Response: " +
                          text::to_hex(std::string_view(p, available < 16 ? available : 16)));
  }
  ber_tlv_tag_t tag;
  const ssize_t tag_len = ber_fetch_tag(p, available, &tag);
  if (tag_len < 0) return make_error(Exit::kProtocol, "server sent bytes that are not BER");
  if (tag_len == 0) return std::optional<Response>{};
  if (available > static_cast<std::size_t>(tag_len) && (static_cast<unsigned char>(p[tag_len]) & 0x80) != 0 &&
      (static_cast<unsigned char>(p[tag_len]) & 0x7f) > kMaxLengthOctets) {
    return make_error(Exit::kProtocol, "server sent a BER length of " +
                                           std::to_string(static_cast<unsigned char>(p[tag_len]) & 0x7f) +
                                           " octets; responses are limited to " +
                                           std::to_string(kMaxResponseSize) + " bytes");
  }
  ber_tlv_len_t length = 0;
  const ssize_t len_len = ber_fetch_length(BER_TLV_CONSTRUCTED(p), p + tag_len, available - tag_len, &length);
  if (len_len < 0) return make_error(Exit::kProtocol, "server sent a BER length that is invalid");
  if (len_len == 0) return std::optional<Response>{};
  if (length < 0) {
    return make_error(Exit::kProtocol, "server sent a response with an indefinite length");
  }
  const std::size_t header = static_cast<std::size_t>(tag_len + len_len);
  if (static_cast<std::size_t>(length) > kMaxResponseSize - header) {
    return make_error(Exit::kProtocol, "server sent a response of " + std::to_string(length) +
                                           " bytes; responses are limited to " +
                                           std::to_string(kMaxResponseSize) + " bytes");
  }
  const std::size_t total = header + static_cast<std::size_t>(length);
  if (available < total) return std::optional<Response>{};

  if (!inner_headers_ok(reinterpret_cast<const unsigned char*>(p) + header, total - header, 1)) {
    return make_error(Exit::kProtocol, "server sent a response that does not decode: " +
                                           text::to_hex(std::string_view(p, total < 32 ? total : 32)));
  }
  Response_t* raw = nullptr;
  const asn_dec_rval_t rv = ber_decode(nullptr, &asn_DEF_Response, reinterpret_cast<void**>(&raw), p, total);
  std::unique_ptr<Response_t, ResponseDeleter> decoded(raw);
  if (rv.code != RC_OK || rv.consumed != total) {
    return make_error(Exit::kProtocol, "server sent a response that does not decode: " +
                                           text::to_hex(std::string_view(p, total < 32 ? total : 32)));
  }
  pos_ += total;
  Response response{decoded->present == Response_PR_accepted, {}};
  if (decoded->present == Response_PR_rejected) {
    const auto& reason = decoded->choice.rejected.reason;
    response.reason.assign(reinterpret_cast<const char*>(reason.buf), reason.size);
  } else if (decoded->present != Response_PR_accepted) {
    return make_error(Exit::kProtocol, "server sent a response of an unknown kind");
  }
  return std::optional<Response>{std::move(response)};
}

}  // namespace game::protocol
