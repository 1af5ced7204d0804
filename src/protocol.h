// The game protocol (asn1/Protocol.asn1): Requests the client sends, Responses a server that
// acknowledges sends back. The asn1c-generated code stays behind this interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

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

// Splits the server's byte stream, which may arrive split or coalesced, into Responses.
// Memory is bounded: a PDU whose header claims more than kMaxResponseSize is an error.
class ResponseReader {
 public:
  static constexpr std::size_t kMaxResponseSize = 64 * 1024;

  void feed(const char* data, std::size_t size);
  // The next complete Response; nullopt when more bytes are needed.
  Result<std::optional<Response>> next();
  // True when no partial PDU is buffered.
  bool empty() const { return pos_ == buffer_.size(); }

 private:
  std::string buffer_;
  std::size_t pos_ = 0;
};

}  // namespace game::protocol
