#include "ber_direct.h"

#include <array>
#include <bit>
#include <cstring>

namespace game::ber_direct {
namespace {

// Bytes of the minimal two's-complement form of `value` (X.690 8.3.2), 1 to 8: its significant
// bits and a sign bit, rounded up to whole bytes (a negative number has the bits of its
// complement).
std::size_t integer_size(std::int64_t value) {
  const auto magnitude = static_cast<std::uint64_t>(value < 0 ? ~value : value);
  return static_cast<std::size_t>(std::bit_width(magnitude)) / 8 + 1;
}

// A message of at most 34 bytes (a submit with two 8-byte integers), so every length is in
// short form: built on the stack and appended to the caller's string in one piece, or written in
// place where the caller has the room (put_submit_add_score, into protocol 2's ring). The writers
// take and return the position (a pointer in a local, not a member the compiler must reload
// after every byte stored), and an integer is stored as one word (the spare bytes past it are
// overwritten or never read): this runs once per request of a batch.
using Buffer = std::array<char, 48>;

char* put_header(char* p, unsigned char tag, std::size_t length) {
  p[0] = static_cast<char>(tag);
  p[1] = static_cast<char>(length);
  return p + 2;
}

// Eight octets in memory order, octet 0 the lowest of `word`.
char* put_octets(char* p, std::uint64_t word) {
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
  std::memcpy(p, &word, sizeof word);
  return p + 8;
}

// The n bytes of the minimal two's-complement form, most significant first.
char* put_value(char* p, std::int64_t value, std::size_t n) {
  std::uint64_t word = static_cast<std::uint64_t>(value) << (8 * (8 - n));
  if constexpr (std::endian::native == std::endian::little) word = __builtin_bswap64(word);
  std::memcpy(p, &word, sizeof word);
  return p + n;
}

// Request addScore: [1] { SEQUENCE { [0] { INTEGER } } }, its four headers a1 n+6 30 n+4 a0 n+2
// 02 n as one word (n added to the four lengths), then the INTEGER's n bytes.
constexpr std::size_t kAddScoreOverhead = 8;
constexpr std::uint64_t kAddScoreHeaders = 0x000202a0043006a1;  // with n = 0
constexpr std::uint64_t kLengthsOf4 = 0x0100010001000100;       // octets 1, 3, 5 and 7

char* put_add_score(char* p, std::int64_t value, std::size_t n) {
  return put_value(put_octets(p, kAddScoreHeaders + n * kLengthsOf4), value, n);
}

void append(const Buffer& buffer, const char* end, std::string& out) {
  out.append(buffer.data(), static_cast<std::size_t>(end - buffer.data()));
}

std::uint8_t byte(std::string_view bytes, std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); }

}  // namespace

void append_add_score(std::int64_t value, std::string& out) {
  Buffer buffer;  // not zeroed: only what is written is read
  append(buffer, put_add_score(buffer.data(), value, integer_size(value)), out);
}

// a1 L 30 L-2 a0 m+2 02 m <seq> a1 n+8 <Request addScore>, with L = (2 + 2 + m) + (2 + 8 + n) + 2:
// the first eight octets as one word (m + n added to octets 1 and 3, m to 5 and 7).
char* put_submit_add_score(char* out, std::int64_t seq, std::int64_t value) {
  constexpr std::uint64_t kSubmitHeaders = 0x000202a00e3010a1;  // with m = n = 0
  constexpr std::uint64_t kBodyLengths = 0x0000000001000100;    // octets 1 and 3
  constexpr std::uint64_t kSeqLengths = 0x0100010000000000;     // octets 5 and 7
  const std::size_t m = integer_size(seq);
  const std::size_t n = integer_size(value);
  char* p = put_octets(out, kSubmitHeaders + (m + n) * kBodyLengths + m * kSeqLengths);
  p = put_value(p, seq, m);
  p = put_header(p, 0xa1, kAddScoreOverhead + n);
  return put_add_score(p, value, n);
}

void append_submit_add_score(std::int64_t seq, std::int64_t value, std::string& out) {
  Buffer buffer;
  static_assert(sizeof buffer >= kSubmitAddScoreRoom);
  append(buffer, put_submit_add_score(buffer.data(), seq, value), out);
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

std::size_t accepted_result_size(std::string_view bytes, std::uint64_t seq) {
  const std::size_t m = integer_size(static_cast<std::int64_t>(seq));
  const std::size_t size = m + 14;
  if (bytes.size() < size) return 0;
  const char* const p = bytes.data();
  // The eight header octets a1 m+12 30 m+10 a0 m+2 02 m (see common_result) compared as one word
  // read in memory order, then seq's m octets, then the outcome's six: a result is matched in a
  // few compares, once per request of a batch.
  std::uint64_t header;
  std::memcpy(&header, p, sizeof header);
  if constexpr (std::endian::native == std::endian::big) header = __builtin_bswap64(header);
  constexpr std::uint64_t kHeaderWithoutM = 0x000202a00a300ca1;  // octet 0 is the lowest
  constexpr std::uint64_t kM = 0x0100010001000100;               // m added to octets 1, 3, 5 and 7
  if (header != kHeaderWithoutM + m * kM) return 0;
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < m; ++i) value = (value << 8) | static_cast<unsigned char>(p[8 + i]);
  if (value != seq) return 0;
  return std::memcmp(p + 8 + m, "\xa1\x04\xa0\x02\x05\x00", 6) == 0 ? size : 0;
}

}  // namespace game::ber_direct
