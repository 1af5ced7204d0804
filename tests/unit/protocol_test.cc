// Known-answer vectors from an independent ASN.1 toolchain (Erlang/OTP asn1ct, BER):
// tests/data/protocol-vectors.txt, a copy of shared/vectors/protocol-vectors.txt.
#include "protocol.h"

#include <gtest/gtest.h>

#include <regex>

#include "text.h"
#include "vectors.h"

using namespace game;

namespace {

using test::from_hex;
using Vector = test::HexVector;

std::vector<Vector> load_vectors() { return test::load_hex_vectors(GAME_VECTORS_FILE); }

std::string encoded(const Result<protocol::Request>& request) {
  std::string out;
  protocol::encode(*request, out);
  return text::to_hex(out);
}

TEST(ProtocolVectors, FileHasAllKinds) {
  const auto vectors = load_vectors();
  ASSERT_GE(vectors.size(), 20u) << "vectors file missing or truncated: " << GAME_VECTORS_FILE;
}

TEST(ProtocolVectors, EveryRequestVectorEncodesByteForByte) {
  const std::regex set_re(R"(Request setUsername \"(.*)\"( \(.*\))?)");
  const std::regex score_re(R"(Request addScore (-?[0-9]+))");
  int checked = 0;
  for (const Vector& v : load_vectors()) {
    std::smatch m;
    if (std::regex_match(v.description, m, set_re)) {
      auto request = protocol::make_set_username(m[1].str());
      ASSERT_TRUE(request) << v.description;
      EXPECT_EQ(encoded(request), v.hex) << v.description;
      ++checked;
    } else if (std::regex_match(v.description, m, score_re)) {
      auto request = protocol::make_add_score(m[1].str());
      if (m[1].str() == "18446744073709551616") {
        // Beyond int64: must be refused as input, never wrapped.
        ASSERT_FALSE(request);
        EXPECT_EQ(request.error().code, Exit::kDataErr);
        EXPECT_NE(request.error().message.find("out of range"), std::string::npos);
      } else {
        ASSERT_TRUE(request) << v.description;
        EXPECT_EQ(encoded(request), v.hex) << v.description;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 16);
}

TEST(ProtocolVectors, EveryResponseVectorDecodes) {
  const std::regex rejected_re(R"(Response rejected \"(.*)\")");
  int checked = 0;
  for (const Vector& v : load_vectors()) {
    if (v.description.rfind("Response", 0) != 0) continue;
    protocol::ResponseReader reader;
    const std::string bytes = from_hex(v.hex);
    reader.feed(bytes.data(), bytes.size());
    auto response = reader.next();
    ASSERT_TRUE(response) << v.description << ": " << response.error().message;
    ASSERT_TRUE(*response) << v.description;
    std::smatch m;
    if (std::regex_match(v.description, m, rejected_re)) {
      EXPECT_FALSE((*response)->accepted);
      EXPECT_EQ((*response)->reason, m[1].str());
    } else {
      EXPECT_TRUE((*response)->accepted) << v.description;
    }
    EXPECT_TRUE(reader.empty());
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(ResponseReader, ReassemblesSplitAndCoalescedStreams) {
  std::string stream;
  for (const Vector& v : load_vectors()) {
    if (v.description.rfind("Response", 0) == 0) stream += from_hex(v.hex);
  }
  // Feed one byte at a time, then everything at once: same responses either way.
  for (const std::size_t step : {std::size_t{1}, std::size_t{3}, stream.size()}) {
    protocol::ResponseReader reader;
    int count = 0;
    for (std::size_t i = 0; i < stream.size(); i += step) {
      reader.feed(stream.data() + i, std::min(step, stream.size() - i));
      for (;;) {
        auto r = reader.next();
        ASSERT_TRUE(r) << r.error().message;
        if (!*r) break;
        ++count;
      }
    }
    EXPECT_EQ(count, 6) << "step " << step;
    EXPECT_TRUE(reader.empty());
  }
}

// Accepted responses in a row are taken by count: at most `max`, whole ones only; whatever
// follows them is next()'s.
TEST(ResponseReader, TakesAcceptedInARowByCount) {
  std::string accepted, rejected;
  for (const Vector& v : load_vectors()) {
    if (v.description == "Response accepted") accepted = from_hex(v.hex);
    if (v.description == "Response rejected \"negative score\"") rejected = from_hex(v.hex);
  }
  ASSERT_EQ(text::to_hex(accepted), "a0020500");
  ASSERT_FALSE(rejected.empty());
  const std::string stream = accepted + accepted + accepted + rejected + accepted + accepted.substr(0, 2);
  protocol::ResponseReader reader;
  reader.feed(stream.data(), stream.size());
  EXPECT_EQ(reader.take_accepted(2), 2u);
  EXPECT_EQ(reader.take_accepted(10), 1u);
  EXPECT_EQ(reader.take_accepted(10), 0u);
  auto r = reader.next();
  ASSERT_TRUE(r && *r);
  EXPECT_FALSE((*r)->accepted);
  EXPECT_EQ((*r)->reason, "negative score");
  EXPECT_EQ(reader.take_accepted(10), 1u);
  EXPECT_EQ(reader.take_accepted(10), 0u);  // half of the next one
  EXPECT_FALSE(reader.empty());
  reader.feed(accepted.data() + 2, 2);
  EXPECT_EQ(reader.take_accepted(0), 0u);
  EXPECT_EQ(reader.take_accepted(10), 1u);
  EXPECT_TRUE(reader.empty());
}

TEST(ResponseReader, RefusesHugeLengthWithoutBuffering) {
  protocol::ResponseReader reader;
  const std::string header = from_hex("a0847fffffff0500");
  reader.feed(header.data(), header.size());
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Exit::kProtocol);
  EXPECT_NE(r.error().message.find("limited to 65536 bytes"), std::string::npos) << r.error().message;
}

TEST(ResponseReader, RefusesIndefiniteLengthAndGarbage) {
  for (const char* hex : {"a0800500 0000", "ffffffff", "a0020101", "a2020500"}) {
    std::string h(hex);
    h.erase(std::remove(h.begin(), h.end(), ' '), h.end());
    protocol::ResponseReader reader;
    const std::string bytes = from_hex(h);
    reader.feed(bytes.data(), bytes.size());
    auto r = reader.next();
    ASSERT_FALSE(r) << hex;
    EXPECT_EQ(r.error().code, Exit::kProtocol) << hex;
  }
}

TEST(Requests, ScoreInputIsStrict) {
  for (const char* bad : {"12abc", "1e3", "", " 5", "5 ", "+5", "0x10", "9223372036854775808",
                          "-9223372036854775809", "1.0", "--5"}) {
    auto r = protocol::make_add_score(bad);
    EXPECT_FALSE(r) << "'" << bad << "'";
    if (!r) {
      EXPECT_EQ(r.error().code, Exit::kDataErr);
    }
  }
  EXPECT_EQ(encoded(protocol::make_add_score("-0")), "a1073005a003020100");
}

TEST(Requests, NamesMustBeUtf8) {
  EXPECT_FALSE(protocol::make_set_username("\xff"));
  EXPECT_FALSE(protocol::make_set_username("a\xc3"));
  EXPECT_FALSE(protocol::make_set_username("\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(protocol::make_set_username("\xc0\xaf"));      // overlong '/'
  EXPECT_TRUE(protocol::make_set_username("Zoë 🎮"));
}

}  // namespace
