#include "ber_direct.h"

#include <array>

namespace game::ber_direct {
namespace {

// Bytes of the minimal two's-complement form of `value` (X.690 8.3.2): 1 to 8.
std::size_t integer_size(std::int64_t value) {
  std::size_t n = 1;
  // One more byte while the bits above the current ones are not all copies of its sign bit.
  while (n < 8 && (value >> (8 * n - 1)) != 0 && (value >> (8 * n - 1)) != -1) ++n;
  return n;
}

// A message of at most 36 bytes (a submit with two 8-byte integers), so every length is in
// short form: built on the stack and appended to the caller's string in one piece.
class Writer {
 public:
  void header(unsigned char tag, std::size_t length) {
    put(tag);
    put(length);
  }
  // Tag 02, then the n bytes of the minimal two's-complement form.
  void integer(std::int64_t value, std::size_t n) {
    header(0x02, n);
    for (std::size_t i = n; i-- > 0;) put(static_cast<std::uint64_t>(value) >> (8 * i));
  }
  void append_to(std::string& out) const { out.append(buf_.data(), size_); }

 private:
  void put(std::uint64_t byte) { buf_[size_++] = static_cast<char>(byte & 0xff); }
  std::array<char, 40> buf_;  // not zeroed: only the first size_ bytes are ever read
  std::size_t size_ = 0;
};

// Request addScore: [1] { SEQUENCE { [0] { INTEGER } } }.
constexpr std::size_t kAddScoreOverhead = 8;  // three headers around the INTEGER's header

void add_score(std::int64_t value, std::size_t n, Writer& w) {
  w.header(0xa1, n + 6);
  w.header(0x30, n + 4);
  w.header(0xa0, n + 2);
  w.integer(value, n);
}

std::uint8_t byte(std::string_view bytes, std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); }

}  // namespace

void append_add_score(std::int64_t value, std::string& out) {
  Writer w;
  add_score(value, integer_size(value), w);
  w.append_to(out);
}

void append_submit_add_score(std::int64_t seq, std::int64_t value, std::string& out) {
  const std::size_t m = integer_size(seq);
  const std::size_t n = integer_size(value);
  const std::size_t request = kAddScoreOverhead + n;     // the whole Request TLV
  const std::size_t body = (2 + 2 + m) + (2 + request);  // [0] seq, [1] request
  Writer w;
  w.header(0xa1, body + 2);
  w.header(0x30, body);
  w.header(0xa0, 2 + m);
  w.integer(seq, m);
  w.header(0xa1, request);
  add_score(value, n, w);
  w.append_to(out);
}

bool is_accepted_response(std::string_view message) { return message == kAcceptedResponse; }

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

std::size_t common_result_size(std::string_view bytes) {
  return bytes.size() < 8 ? 0 : byte(bytes, 7) + std::size_t{14};
}

}  // namespace game::ber_direct
