// The messages of nearly every request, encoded and recognised without asn1c: a score and its
// acknowledgement. asn1c's generic encoder and decoder walk type descriptors and allocate, which
// made them half of a batch's CPU per request (docs/PERFORMANCE.md); these few fixed shapes are
// written and matched byte for byte instead. Everything else still goes through asn1c
// (src/protocol.cc), and the known-answer vectors pin both (tests/unit/ber_direct_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace game::ber_direct {

// Protocol 1 `Request addScore { value }`: a1 L 30 L a0 L 02 L <value>, at most
// kMaxAddScoreSize bytes.
inline constexpr std::size_t kMaxAddScoreSize = 16;
void append_add_score(std::int64_t value, std::string& out);

// Protocol 2 `ClientMessage submit { seq, request addScore { value } }`.
void append_submit_add_score(std::int64_t seq, std::int64_t value, std::string& out);  // 0 < seq

// The same written at `out`, which must have kSubmitAddScoreRoom bytes: the message (at most 34)
// and the spare bytes of its last whole-word store. Returns the message's end.
inline constexpr std::size_t kSubmitAddScoreRoom = 48;
char* put_submit_add_score(char* out, std::int64_t seq, std::int64_t value);  // 0 < seq

// Protocol 1's `Response accepted`.
inline constexpr std::string_view kAcceptedResponse("\xa0\x02\x05\x00", 4);

// Whether one framed message is protocol 1's `Response accepted` (a0 02 05 00).
bool is_accepted_response(std::string_view message);

// One framed message that is protocol 2's `ServerMessage result { seq, accepted }` or
// `{ seq, duplicate }` with a positive seq in its minimal encoding, as every encoder writes it.
// nullopt for anything else: the caller then decodes it generically (and judges it).
struct CommonResult {
  std::uint64_t seq;
  bool duplicate;
};
std::optional<CommonResult> common_result(std::string_view message);

// The size of protocol 2's `result { seq, accepted }` for exactly this seq (> 0, below 2^63), in
// its minimal encoding, if `bytes` (a byte stream) begins with it; 0 otherwise. The answer to
// nearly every request of a batch, matched against the one expected without decoding anything.
std::size_t accepted_result_size(std::string_view bytes, std::uint64_t seq);

}  // namespace game::ber_direct
