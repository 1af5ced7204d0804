#include "ber_direct.h"

namespace game::ber_direct {
namespace {

// Bytes of the minimal two's-complement form of `value` (X.690 8.3.2): 1 to 8.
std::size_t integer_size(std::int64_t value) {
  std::size_t n = 1;
  // One more byte while the bits above the current ones are not all copies of its sign bit.
  while (n < 8 && (value >> (8 * n - 1)) != 0 && (value >> (8 * n - 1)) != -1) ++n;
  return n;
}

// Tag 02, then the contents: at most 10 bytes, so every length here is in short form.
void append_integer(std::int64_t value, std::string& out) {
  const std::size_t n = integer_size(value);
  out += '\x02';
  out += static_cast<char>(n);
  for (std::size_t i = n; i-- > 0;) out += static_cast<char>(static_cast<std::uint64_t>(value) >> (8 * i));
}

void append_header(unsigned char tag, std::size_t length, std::string& out) {
  out += static_cast<char>(tag);
  out += static_cast<char>(length);
}

// Request addScore: [1] { SEQUENCE { [0] { INTEGER } } }.
constexpr std::size_t kAddScoreOverhead = 8;  // three headers around the INTEGER's header

void append_add_score_sized(std::int64_t value, std::size_t n, std::string& out) {
  append_header(0xa1, n + 6, out);
  append_header(0x30, n + 4, out);
  append_header(0xa0, n + 2, out);
  append_integer(value, out);
}

std::uint8_t byte(std::string_view bytes, std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); }

}  // namespace

void append_add_score(std::int64_t value, std::string& out) {
  append_add_score_sized(value, integer_size(value), out);
}

void append_submit_add_score(std::int64_t seq, std::int64_t value, std::string& out) {
  const std::size_t m = integer_size(seq);
  const std::size_t n = integer_size(value);
  const std::size_t request = kAddScoreOverhead + n;     // the whole Request TLV
  const std::size_t body = (2 + 2 + m) + (2 + request);  // [0] seq, [1] request
  append_header(0xa1, body + 2, out);
  append_header(0x30, body, out);
  append_header(0xa0, 2 + m, out);
  append_integer(seq, out);
  append_header(0xa1, request, out);
  append_add_score_sized(value, n, out);
}

bool is_accepted_response(std::string_view message) {
  return message == std::string_view("\xa0\x02\x05\x00", 4);
}

// a1 m+12 30 m+10 a0 m+2 02 m <seq> a1 04 (a0|a2) 02 05 00: m + 14 bytes.
std::optional<CommonResult> common_result(std::string_view message) {
  if (message.size() < 9 || byte(message, 0) != 0xa1 || byte(message, 2) != 0x30 ||
      byte(message, 4) != 0xa0 || byte(message, 6) != 0x02)
    return std::nullopt;
  const std::size_t m = byte(message, 7);
  if (m < 1 || m > 8 || message.size() != m + 14 || byte(message, 1) != m + 12 ||
      byte(message, 3) != m + 10 || byte(message, 5) != m + 2)
    return std::nullopt;
  // Positive and minimal: no leading 00 unless the next byte's top bit needs it.
  if ((byte(message, 8) & 0x80) != 0 || (m > 1 && byte(message, 8) == 0 && (byte(message, 9) & 0x80) == 0))
    return std::nullopt;
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < m; ++i) seq = (seq << 8) | byte(message, 8 + i);
  if (seq == 0) return std::nullopt;
  const std::string_view outcome = message.substr(8 + m);
  if (outcome == std::string_view("\xa1\x04\xa0\x02\x05\x00", 6)) return CommonResult{seq, false};
  if (outcome == std::string_view("\xa1\x04\xa2\x02\x05\x00", 6)) return CommonResult{seq, true};
  return std::nullopt;
}

}  // namespace game::ber_direct
