// The game protocol (asn1/Protocol.asn1, docs/protocol.md). Protocol 1: Requests the client
// sends, Responses a server that acknowledges sends back. Protocol 2: ClientMessages (open a
// stream, submit and account requests numbered by seq) and ServerMessages (opened, result).
// The asn1c-generated code stays behind this interface.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ber_direct.h"
#include "error.h"

namespace game::protocol {

struct SetUsername {
  std::string name;  // valid UTF-8
};
struct AddScore {
  std::int64_t value;
};
using Request = std::variant<SetUsername, AddScore>;

// Validated constructors for user input; the error message names what was wrong.
Result<Request> make_set_username(std::string_view name);
Result<Request> make_add_score(std::string_view decimal);

// Appends the BER encoding of `request` to `out`.
void encode(const Request& request, std::string& out);

struct Response {
  bool accepted;
  std::string reason;  // set when rejected, as the server sent it (not sanitised)
};

// Protocol 2 account requests (docs/protocol.md). `key` is an SSH public key blob (RFC 4253
// 6.6), the decoded base64 part of an OpenSSH .pub line.
struct AddKey {
  std::string key;
  std::string label;
};
struct RemoveKey {
  std::string key;
};
struct ListKeys {};
using AccountRequest = std::variant<AddKey, RemoveKey, ListKeys>;

// What a unit of work sends, one per seq: a protocol 1 Request, or an account request.
using Submission = std::variant<Request, AccountRequest>;

// The 16 random bytes that name a stream.
using StreamId = std::array<std::uint8_t, 16>;

// Appends the BER encoding of ClientMessage open { stream }.
void encode_open(const StreamId& stream, std::string& out);
// Appends ClientMessage submit { seq, request } or account { seq, request }. 0 < seq < 2^63.
void encode_submission(std::uint64_t seq, const Submission& submission, std::string& out);

struct KeyInfo {
  std::string key;  // SSH public key blob
  std::string label;
  bool current = false;
};
struct Opened {
  std::uint64_t last_seq = 0;
};
struct ResultMessage {
  enum class Kind { kAccepted, kRejected, kDuplicate, kKeys };
  std::uint64_t seq = 0;
  Kind kind = Kind::kAccepted;
  std::string reason;         // kRejected, as the server sent it (not sanitised)
  std::vector<KeyInfo> keys;  // kKeys
};
using ServerMessage = std::variant<Opened, ResultMessage>;

// Frames one BER TLV at a time out of a byte stream that may arrive split or coalesced, with
// the hardening every reader of the server's bytes needs: at most kMaxMessageSize bytes per
// message, definite lengths, single-byte tags, bounded nesting. Memory is bounded: a header
// that claims more than kMaxMessageSize is an error at once, never waited for.
class BerFramer {
 public:
  static constexpr std::size_t kMaxMessageSize = 64 * 1024;

  void feed(const char* data, std::size_t size);
  // The next complete, well-framed TLV (valid until the next feed); nullopt when more bytes are
  // needed. Errors name the message as `what` ("response") and its ASN.1 `type` ("Response").
  Result<std::optional<std::string_view>> next(const char* what, const char* type);
  // True when no partial message is buffered.
  bool empty() const { return pos_ == buffer_.size(); }
  // The bytes not yet framed, and dropping `size` of them: for callers that recognise a message
  // of a fixed shape themselves (which then needs no hardening).
  std::string_view unread() const { return std::string_view(buffer_).substr(pos_); }
  void skip(std::size_t size) { pos_ += size; }

 private:
  std::string buffer_;
  std::size_t pos_ = 0;
};

// Splits the server's protocol 1 byte stream into Responses.
class ResponseReader {
 public:
  static constexpr std::size_t kMaxResponseSize = BerFramer::kMaxMessageSize;

  void feed(const char* data, std::size_t size) { framer_.feed(data, size); }
  // The next complete Response; nullopt when more bytes are needed.
  Result<std::optional<Response>> next();
  // Takes up to `max` `Response accepted` in a row off the front, without building them: the
  // answers to nearly every request. Returns how many.
  std::uint64_t take_accepted(std::uint64_t max);
  bool empty() const { return framer_.empty(); }

 private:
  BerFramer framer_;
};

// Splits the server's protocol 2 byte stream into ServerMessages. A seq or lastSeq that is not
// a positive integer below 2^63 (lastSeq: or 0) is a protocol error.
class ServerMessageReader {
 public:
  void feed(const char* data, std::size_t size) { framer_.feed(data, size); }
  Result<std::optional<ServerMessage>> next();
  // Takes the next message if it is `result { seq, accepted }` for this seq
  // (ber_direct::accepted_result_size). False, with nothing taken, for anything else.
  bool take_accepted(std::uint64_t seq) {
    const std::size_t size = ber_direct::accepted_result_size(framer_.unread(), seq);
    framer_.skip(size);
    return size > 0;
  }
  bool empty() const { return framer_.empty(); }

 private:
  BerFramer framer_;
};

// The other direction, for a server: tests/unit/session_test.cc's fake server speaks through it.
struct ClientMessage {
  enum class Kind { kOpen, kSubmission };
  Kind kind = Kind::kOpen;
  StreamId stream{};      // kOpen
  std::uint64_t seq = 0;  // kSubmission
  Submission submission;  // kSubmission
};
void encode_server_message(const ServerMessage& message, std::string& out);
class ClientMessageReader {
 public:
  void feed(const char* data, std::size_t size) { framer_.feed(data, size); }
  Result<std::optional<ClientMessage>> next();

 private:
  BerFramer framer_;
};

}  // namespace game::protocol
