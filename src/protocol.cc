// The only translation unit that sees asn1c's generated headers: they define macros (MIN,
// MALLOC, FREEMEM) that must not leak into the rest of the program.
#include "protocol.h"

#include <charconv>
#include <cstring>
#include <memory>

#include "ber_direct.h"
#include "text.h"

extern "C" {
#include <ClientMessage.h>
#include <KeyInfo.h>
#include <Request.h>
#include <Response.h>
#include <ServerMessage.h>
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

void encode_pdu(asn_TYPE_descriptor_t& type, void* pdu, std::string& out) {
  const asn_enc_rval_t rv = der_encode(&type, pdu, append_to_string, &out);
  // Encoding a well-formed structure cannot fail: callers fill every field the schema has.
  if (rv.encoded < 0) std::abort();
}

// Points an OCTET_STRING (or UTF8String) at `bytes` without copying: der_encode only reads.
void borrow(OCTET_STRING_t& string, std::string_view bytes) {
  string.buf = reinterpret_cast<uint8_t*>(const_cast<char*>(bytes.data()));
  string.size = static_cast<int>(bytes.size());
}

void fill_request(const Request& request, Request_t& pdu) {
  if (const auto* set = std::get_if<SetUsername>(&request)) {
    pdu.present = Request_PR_setUsername;
    borrow(pdu.choice.setUsername.name, set->name);
  } else {
    pdu.present = Request_PR_addScore;
    pdu.choice.addScore.value = std::get<AddScore>(request).value;
  }
}

void fill_account(const AccountRequest& request, AccountRequest_t& pdu) {
  if (const auto* add = std::get_if<AddKey>(&request)) {
    pdu.present = AccountRequest_PR_addKey;
    borrow(pdu.choice.addKey.key, add->key);
    borrow(pdu.choice.addKey.label, add->label);
  } else if (const auto* remove = std::get_if<RemoveKey>(&request)) {
    pdu.present = AccountRequest_PR_removeKey;
    borrow(pdu.choice.removeKey.key, remove->key);
  } else {
    pdu.present = AccountRequest_PR_listKeys;
  }
}

template <class T>
struct AsnDeleter {
  asn_TYPE_descriptor_t* type;
  void operator()(T* value) const { ASN_STRUCT_FREE(*type, value); }
};
template <class T>
using AsnPtr = std::unique_ptr<T, AsnDeleter<T>>;

// Decodes one framed message; null if it does not decode to exactly `type`.
template <class T>
AsnPtr<T> decode_pdu(asn_TYPE_descriptor_t& type, std::string_view bytes) {
  T* raw = nullptr;
  const asn_dec_rval_t rv =
      ber_decode(nullptr, &type, reinterpret_cast<void**>(&raw), bytes.data(), bytes.size());
  AsnPtr<T> decoded(raw, AsnDeleter<T>{&type});
  if (rv.code != RC_OK || rv.consumed != bytes.size()) decoded.reset();
  return decoded;
}

Error undecodable(const char* what, std::string_view bytes) {
  return make_error(Exit::kProtocol, std::string("server sent a ") + what +
                                         " that does not decode: " + text::to_hex(bytes.substr(0, 32)));
}

std::string string_of(const OCTET_STRING_t& s) {
  return std::string(reinterpret_cast<const char*>(s.buf), s.size);
}

// A message of at most BerFramer::kMaxMessageSize bytes needs no more than 3 length
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
    // EXPLICIT tagging makes every context-specific tag of the schema constructed. asn1c matches
    // tags without looking at that bit and decodes a primitive [n] as if it were constructed, so
    // its contents (which this check does not descend into) would reach ber_fetch_length
    // unchecked (found by tests/fuzz/fuzz_response).
    if ((p[0] & 0xc0) == 0x80 && (p[0] & 0x20) == 0) return false;
    // Likewise a SEQUENCE (the only universal constructed type here) is never primitive.
    if (p[0] == 0x10) return false;
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
  if (const auto* score = std::get_if<AddScore>(&request))
    return ber_direct::append_add_score(score->value, out);
  Request_t pdu;
  std::memset(&pdu, 0, sizeof pdu);
  fill_request(request, pdu);
  encode_pdu(asn_DEF_Request, &pdu, out);
}

void encode_open(const StreamId& stream, std::string& out) {
  ClientMessage_t pdu;
  std::memset(&pdu, 0, sizeof pdu);
  pdu.present = ClientMessage_PR_open;
  borrow(pdu.choice.open.stream,
         std::string_view(reinterpret_cast<const char*>(stream.data()), stream.size()));
  encode_pdu(asn_DEF_ClientMessage, &pdu, out);
}

void encode_submission(std::uint64_t seq, const Submission& submission, std::string& out) {
  if (const auto* request = std::get_if<Request>(&submission)) {
    if (const auto* score = std::get_if<AddScore>(request)) {
      return ber_direct::append_submit_add_score(static_cast<std::int64_t>(seq), score->value, out);
    }
  }
  ClientMessage_t pdu;
  std::memset(&pdu, 0, sizeof pdu);
  if (const auto* request = std::get_if<Request>(&submission)) {
    pdu.present = ClientMessage_PR_submit;
    pdu.choice.submit.seq = static_cast<long>(seq);
    fill_request(*request, pdu.choice.submit.request);
  } else {
    pdu.present = ClientMessage_PR_account;
    pdu.choice.account.seq = static_cast<long>(seq);
    fill_account(std::get<AccountRequest>(submission), pdu.choice.account.request);
  }
  encode_pdu(asn_DEF_ClientMessage, &pdu, out);
}

void BerFramer::feed(const char* data, std::size_t size) {
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  } else if (pos_ > buffer_.size() / 2) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(data, size);
}

Result<std::optional<std::string_view>> BerFramer::next(const char* what, const char* type) {
  using Frame = std::optional<std::string_view>;
  const char* p = buffer_.data() + pos_;
  const std::size_t available = buffer_.size() - pos_;
  if (available == 0) return Frame{};

  // Frame the outer TLV ourselves: ber_decode would happily wait for (and buffer) a 2 GB PDU.
  // Our schema has only low tag numbers, so a multi-byte tag is refused at once rather than
  // waited for.
  if ((static_cast<unsigned char>(*p) & 0x1f) == 0x1f) {
    return make_error(Exit::kProtocol,
                      std::string("server sent bytes that are not a ") + type + ": " +
                          text::to_hex(std::string_view(p, available < 16 ? available : 16)));
  }
  ber_tlv_tag_t tag;
  const ssize_t tag_len = ber_fetch_tag(p, available, &tag);
  if (tag_len < 0) return make_error(Exit::kProtocol, "server sent bytes that are not BER");
  if (tag_len == 0) return Frame{};
  if (available > static_cast<std::size_t>(tag_len) && (static_cast<unsigned char>(p[tag_len]) & 0x80) != 0 &&
      (static_cast<unsigned char>(p[tag_len]) & 0x7f) > kMaxLengthOctets) {
    return make_error(Exit::kProtocol, "server sent a BER length of " +
                                           std::to_string(static_cast<unsigned char>(p[tag_len]) & 0x7f) +
                                           " octets; " + what + "s are limited to " +
                                           std::to_string(kMaxMessageSize) + " bytes");
  }
  ber_tlv_len_t length = 0;
  const ssize_t len_len = ber_fetch_length(BER_TLV_CONSTRUCTED(p), p + tag_len, available - tag_len, &length);
  if (len_len < 0) return make_error(Exit::kProtocol, "server sent a BER length that is invalid");
  if (len_len == 0) return Frame{};
  if (length < 0) {
    return make_error(Exit::kProtocol, std::string("server sent a ") + what + " with an indefinite length");
  }
  const std::size_t header = static_cast<std::size_t>(tag_len + len_len);
  if (static_cast<std::size_t>(length) > kMaxMessageSize - header) {
    return make_error(Exit::kProtocol, std::string("server sent a ") + what + " of " +
                                           std::to_string(length) + " bytes; " + what + "s are limited to " +
                                           std::to_string(kMaxMessageSize) + " bytes");
  }
  const std::size_t total = header + static_cast<std::size_t>(length);
  if (available < total) return Frame{};

  const std::string_view frame(p, total);
  if (!inner_headers_ok(reinterpret_cast<const unsigned char*>(p) + header, total - header, 1)) {
    return undecodable(what, frame);
  }
  pos_ += total;
  return Frame{frame};
}

std::uint64_t ResponseReader::take_accepted(std::uint64_t max) {
  const std::string_view bytes = framer_.unread();
  const std::size_t size = ber_direct::kAcceptedResponse.size();
  std::uint64_t count = 0;
  for (std::size_t at = 0; count < max && bytes.size() - at >= size; at += size, ++count) {
    if (bytes.compare(at, size, ber_direct::kAcceptedResponse) != 0) break;
  }
  framer_.skip(count * size);
  return count;
}

Result<std::optional<Response>> ResponseReader::next() {
  auto frame = framer_.next("response", "Response");
  if (!frame) return std::move(frame).error();
  if (!*frame) return std::optional<Response>{};
  if (ber_direct::is_accepted_response(**frame)) return std::optional<Response>{Response{true, {}}};
  const auto decoded = decode_pdu<Response_t>(asn_DEF_Response, **frame);
  if (!decoded) return undecodable("response", **frame);
  Response response{decoded->present == Response_PR_accepted, {}};
  if (decoded->present == Response_PR_rejected) {
    response.reason = string_of(decoded->choice.rejected.reason);
  } else if (decoded->present != Response_PR_accepted) {
    return make_error(Exit::kProtocol, "server sent a response of an unknown kind");
  }
  return std::optional<Response>{std::move(response)};
}

namespace {

Result<ResultMessage> result_of(const ServerMessage_t::ServerMessage_u::ServerMessage__result& in) {
  ResultMessage out;
  if (in.seq <= 0) {
    return make_error(Exit::kProtocol, "server sent a result for seq " + std::to_string(in.seq) +
                                           ", which is not a positive number");
  }
  out.seq = static_cast<std::uint64_t>(in.seq);
  switch (in.outcome.present) {
    case Outcome_PR_accepted:
      out.kind = ResultMessage::Kind::kAccepted;
      break;
    case Outcome_PR_rejected:
      out.kind = ResultMessage::Kind::kRejected;
      out.reason = string_of(in.outcome.choice.rejected.reason);
      break;
    case Outcome_PR_duplicate:
      out.kind = ResultMessage::Kind::kDuplicate;
      break;
    case Outcome_PR_keys:
      out.kind = ResultMessage::Kind::kKeys;
      for (int i = 0; i < in.outcome.choice.keys.list.count; ++i) {
        const KeyInfo_t& key = *in.outcome.choice.keys.list.array[i];
        out.keys.push_back({string_of(key.key), string_of(key.label), key.current != 0});
      }
      break;
    default:
      return make_error(Exit::kProtocol, "server sent a result of an unknown kind");
  }
  return out;
}

}  // namespace

Result<std::optional<ServerMessage>> ServerMessageReader::next() {
  constexpr const char* kWhat = "server message";
  auto frame = framer_.next(kWhat, "ServerMessage");
  if (!frame) return std::move(frame).error();
  if (!*frame) return std::optional<ServerMessage>{};
  if (const auto common = ber_direct::common_result(**frame)) {
    ResultMessage result;
    result.seq = common->seq;
    result.kind = common->duplicate ? ResultMessage::Kind::kDuplicate : ResultMessage::Kind::kAccepted;
    return std::optional<ServerMessage>{std::move(result)};
  }
  const auto decoded = decode_pdu<ServerMessage_t>(asn_DEF_ServerMessage, **frame);
  if (!decoded) return undecodable(kWhat, **frame);
  if (decoded->present == ServerMessage_PR_opened) {
    const long last = decoded->choice.opened.lastSeq;
    if (last < 0) {
      return make_error(Exit::kProtocol, "server sent opened with lastSeq " + std::to_string(last));
    }
    return std::optional<ServerMessage>{Opened{static_cast<std::uint64_t>(last)}};
  }
  if (decoded->present != ServerMessage_PR_result) {
    return make_error(Exit::kProtocol, "server sent a server message of an unknown kind");
  }
  auto result = result_of(decoded->choice.result);
  if (!result) return std::move(result).error();
  return std::optional<ServerMessage>{std::move(*result)};
}

void encode_server_message(const ServerMessage& message, std::string& out) {
  ServerMessage_t pdu;
  std::memset(&pdu, 0, sizeof pdu);
  std::vector<KeyInfo_t> infos;
  std::vector<KeyInfo_t*> pointers;
  if (const auto* opened = std::get_if<Opened>(&message)) {
    pdu.present = ServerMessage_PR_opened;
    pdu.choice.opened.lastSeq = static_cast<long>(opened->last_seq);
  } else {
    const auto& result = std::get<ResultMessage>(message);
    pdu.present = ServerMessage_PR_result;
    pdu.choice.result.seq = static_cast<long>(result.seq);
    Outcome_t& outcome = pdu.choice.result.outcome;
    switch (result.kind) {
      case ResultMessage::Kind::kAccepted:
        outcome.present = Outcome_PR_accepted;
        break;
      case ResultMessage::Kind::kRejected:
        outcome.present = Outcome_PR_rejected;
        borrow(outcome.choice.rejected.reason, result.reason);
        break;
      case ResultMessage::Kind::kDuplicate:
        outcome.present = Outcome_PR_duplicate;
        break;
      case ResultMessage::Kind::kKeys:
        outcome.present = Outcome_PR_keys;
        infos.resize(result.keys.size());
        std::memset(infos.data(), 0, infos.size() * sizeof(KeyInfo_t));
        for (std::size_t i = 0; i < result.keys.size(); ++i) {
          borrow(infos[i].key, result.keys[i].key);
          borrow(infos[i].label, result.keys[i].label);
          infos[i].current = result.keys[i].current ? 1 : 0;
          pointers.push_back(&infos[i]);
        }
        outcome.choice.keys.list.array = pointers.data();
        outcome.choice.keys.list.count = static_cast<int>(pointers.size());
        outcome.choice.keys.list.size = static_cast<int>(pointers.size());
        break;
    }
  }
  encode_pdu(asn_DEF_ServerMessage, &pdu, out);
}

Result<std::optional<ClientMessage>> ClientMessageReader::next() {
  constexpr const char* kWhat = "client message";
  auto frame = framer_.next(kWhat, "ClientMessage");
  if (!frame) return std::move(frame).error();
  if (!*frame) return std::optional<ClientMessage>{};
  const auto decoded = decode_pdu<ClientMessage_t>(asn_DEF_ClientMessage, **frame);
  if (!decoded) return undecodable(kWhat, **frame);
  ClientMessage out;
  switch (decoded->present) {
    case ClientMessage_PR_open: {
      const auto& stream = decoded->choice.open.stream;
      if (stream.size != 16) return undecodable(kWhat, **frame);
      std::memcpy(out.stream.data(), stream.buf, 16);
      return std::optional<ClientMessage>{out};
    }
    case ClientMessage_PR_submit: {
      const auto& submit = decoded->choice.submit;
      out.kind = ClientMessage::Kind::kSubmission;
      out.seq = static_cast<std::uint64_t>(submit.seq);
      if (submit.request.present == Request_PR_setUsername) {
        out.submission = Request{SetUsername{string_of(submit.request.choice.setUsername.name)}};
      } else {
        out.submission = Request{AddScore{submit.request.choice.addScore.value}};
      }
      return std::optional<ClientMessage>{out};
    }
    case ClientMessage_PR_account: {
      const auto& account = decoded->choice.account;
      out.kind = ClientMessage::Kind::kSubmission;
      out.seq = static_cast<std::uint64_t>(account.seq);
      if (account.request.present == AccountRequest_PR_addKey) {
        out.submission = AccountRequest{AddKey{string_of(account.request.choice.addKey.key),
                                               string_of(account.request.choice.addKey.label)}};
      } else if (account.request.present == AccountRequest_PR_removeKey) {
        out.submission = AccountRequest{RemoveKey{string_of(account.request.choice.removeKey.key)}};
      } else {
        out.submission = AccountRequest{ListKeys{}};
      }
      return std::optional<ClientMessage>{out};
    }
    default:
      return undecodable(kWhat, **frame);
  }
}

}  // namespace game::protocol
