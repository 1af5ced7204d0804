// The direct encodings and matches of src/ber_direct.cc against the known answers of an
// independent encoder (Erlang/OTP asn1ct: tests/data/protocol-vectors.txt and
// protocol2-vectors.txt) and against asn1c's DER encoder for every length of the integer.
#include "ber_direct.h"

#include <gtest/gtest.h>

#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "protocol.h"
#include "text.h"
#include "vectors.h"

extern "C" {
#include <ClientMessage.h>
#include <Request.h>
}

using namespace game;

namespace {

using test::from_hex;
using Vector = test::HexVector;

std::vector<Vector> load(const std::string& name) {
  return test::load_hex_vectors(name == "protocol-vectors.txt" ? GAME_VECTORS_FILE : GAME_VECTORS2_FILE);
}

// Values at every boundary of the two's-complement lengths, 1 to 8 bytes.
std::vector<std::int64_t> boundary_values() {
  std::vector<std::int64_t> out{0, 1, -1, std::numeric_limits<std::int64_t>::max(),
                                std::numeric_limits<std::int64_t>::min()};
  for (int bits = 7; bits < 63; bits += 8) {
    const std::int64_t edge = std::int64_t{1} << bits;
    for (std::int64_t v : {edge - 1, edge, edge + 1, -edge - 1, -edge, -edge + 1}) out.push_back(v);
  }
  return out;
}

TEST(BerDirect, AddScoreMatchesEveryProtocol1Vector) {
  const std::regex score_re(R"(Request addScore (-?[0-9]+))");
  int checked = 0;
  for (const Vector& v : load("protocol-vectors.txt")) {
    std::smatch m;
    if (!std::regex_match(v.description, m, score_re)) continue;
    auto request = protocol::make_add_score(m[1].str());
    if (!request) continue;  // the vector beyond int64, which input parsing refuses
    std::string out;
    ber_direct::append_add_score(std::get<protocol::AddScore>(*request).value, out);
    EXPECT_EQ(text::to_hex(out), v.hex) << v.description;
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

TEST(BerDirect, AddScoreMatchesAsn1cAtEveryLength) {
  for (const std::int64_t value : boundary_values()) {
    std::string direct;
    ber_direct::append_add_score(value, direct);
    Request_t pdu{};
    pdu.present = Request_PR_addScore;
    pdu.choice.addScore.value = value;
    std::vector<unsigned char> generic(32);
    const asn_enc_rval_t rv = der_encode_to_buffer(&asn_DEF_Request, &pdu, generic.data(), generic.size());
    ASSERT_GT(rv.encoded, 0) << value;
    generic.resize(static_cast<std::size_t>(rv.encoded));
    EXPECT_EQ(text::to_hex(direct), text::to_hex(std::string(generic.begin(), generic.end()))) << value;
  }
}

TEST(BerDirect, SubmitAddScoreMatchesEveryProtocol2Vector) {
  const std::regex submit_re(R"(ClientMessage submit seq ([0-9]+) Request addScore (-?[0-9]+))");
  int checked = 0;
  for (const Vector& v : load("protocol2-vectors.txt")) {
    std::smatch m;
    if (!std::regex_match(v.description, m, submit_re)) continue;
    std::string out;
    ber_direct::append_submit_add_score(std::stoll(m[1].str()), std::stoll(m[2].str()), out);
    EXPECT_EQ(text::to_hex(out), v.hex) << v.description;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(BerDirect, SubmitAddScoreMatchesAsn1cAtEveryLengthOfBoth) {
  int checked = 0;
  for (const std::int64_t seq : boundary_values()) {
    if (seq <= 0) continue;
    for (const std::int64_t value : boundary_values()) {
      std::string direct;
      ber_direct::append_submit_add_score(seq, value, direct);
      ClientMessage_t pdu{};
      pdu.present = ClientMessage_PR_submit;
      pdu.choice.submit.seq = seq;
      pdu.choice.submit.request.present = Request_PR_addScore;
      pdu.choice.submit.request.choice.addScore.value = value;
      std::vector<unsigned char> generic(64);
      const asn_enc_rval_t rv =
          der_encode_to_buffer(&asn_DEF_ClientMessage, &pdu, generic.data(), generic.size());
      ASSERT_GT(rv.encoded, 0) << seq << " " << value;
      generic.resize(static_cast<std::size_t>(rv.encoded));
      EXPECT_EQ(text::to_hex(direct), text::to_hex(std::string(generic.begin(), generic.end())))
          << seq << " " << value;
      ++checked;
    }
  }
  EXPECT_GT(checked, 8 * 8);  // every length of seq (1 to 8 bytes) with every length of value
}

TEST(BerDirect, AcceptedResponseIsRecognisedAndNothingElse) {
  int checked = 0;
  for (const Vector& v : load("protocol-vectors.txt")) {
    if (v.description.rfind("Response ", 0) != 0) continue;
    EXPECT_EQ(ber_direct::is_accepted_response(from_hex(v.hex)), v.description == "Response accepted")
        << v.description;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  EXPECT_FALSE(ber_direct::is_accepted_response(from_hex("a00205")));
  EXPECT_FALSE(ber_direct::is_accepted_response(from_hex("a0020500a0020500")));
}

TEST(BerDirect, CommonResultsAreRecognisedWithTheirSeq) {
  const std::regex result_re(R"(ServerMessage result seq ([0-9]+) (accepted|duplicate))");
  int recognised = 0;
  int others = 0;
  for (const Vector& v : load("protocol2-vectors.txt")) {
    if (v.description.rfind("ServerMessage", 0) != 0) continue;
    const std::string bytes = from_hex(v.hex);
    const auto result = ber_direct::common_result(bytes);
    std::smatch m;
    if (!std::regex_match(v.description, m, result_re)) {
      EXPECT_FALSE(result) << v.description;
      ++others;
      continue;
    }
    ASSERT_TRUE(result) << v.description;
    EXPECT_EQ(result->seq, std::stoull(m[1].str())) << v.description;
    EXPECT_EQ(result->duplicate, m[2].str() == "duplicate") << v.description;
    // Only whole messages: the framer hands over exactly one.
    EXPECT_FALSE(ber_direct::common_result(bytes.substr(0, bytes.size() - 1))) << v.description;
    EXPECT_FALSE(ber_direct::common_result(bytes + '\0')) << v.description;
    ++recognised;
  }
  EXPECT_GE(recognised, 3);
  EXPECT_GE(others, 3);
}

// In a byte stream, `result { seq, accepted }` is matched against the seq expected: at the front
// of what follows it, whole, and for that seq only.
TEST(BerDirect, AcceptedResultIsMatchedForTheSeqDue) {
  const std::regex result_re(R"(ServerMessage result seq ([0-9]+) (accepted|duplicate))");
  std::size_t matched = 0;
  for (const Vector& v : load("protocol2-vectors.txt")) {
    std::smatch m;
    if (!std::regex_match(v.description, m, result_re) || m[2].str() != "accepted") continue;
    const std::string bytes = from_hex(v.hex);
    const std::uint64_t seq = std::stoull(m[1].str());
    EXPECT_EQ(ber_direct::accepted_result_size(bytes + bytes, seq), bytes.size()) << v.description;
    EXPECT_EQ(ber_direct::accepted_result_size(bytes.substr(0, bytes.size() - 1), seq), 0u) << v.description;
    EXPECT_EQ(ber_direct::accepted_result_size(bytes, seq + 1), 0u) << v.description;
    EXPECT_EQ(ber_direct::accepted_result_size(bytes, seq - 1), 0u) << v.description;
    ++matched;
  }
  EXPECT_GE(matched, 2u);
  const std::string max = from_hex("a1143012a00a02087fffffffffffffffa104a0020500");
  EXPECT_EQ(ber_direct::accepted_result_size(max, (std::uint64_t{1} << 63) - 1), 22u);
  const std::string one = from_hex("a10d300ba003020101a104a0020500");
  EXPECT_EQ(ber_direct::accepted_result_size(one, 1), one.size());
  EXPECT_EQ(ber_direct::accepted_result_size(from_hex("a10e300ca00402020001a104a0020500"), 1), 0u);  // 00 01
  EXPECT_EQ(ber_direct::accepted_result_size(from_hex("a10d300ba003020101a104a2020500"), 1),
            0u);  // duplicate
  EXPECT_EQ(ber_direct::accepted_result_size(from_hex("a10d300ba003020101a104a1020500"), 1),
            0u);  // outcome [1]
}

// What the shortcut leaves to asn1c, which decodes it or reports the protocol error.
TEST(BerDirect, UnusualResultsAreLeftToTheGenericDecoder) {
  EXPECT_TRUE(ber_direct::common_result(from_hex("a10d300ba003020101a104a0020500")));
  EXPECT_FALSE(ber_direct::common_result(from_hex("a10e300ca00402020001a104a0020500")));  // seq 1 as 00 01
  EXPECT_FALSE(ber_direct::common_result(from_hex("a10d300ba003020100a104a0020500")));    // seq 0
  EXPECT_FALSE(ber_direct::common_result(from_hex("a10d300ba0030201ffa104a0020500")));    // seq -1
  EXPECT_FALSE(ber_direct::common_result(from_hex("a10d300ba003020101a104a1020500")));    // outcome [1]
}

}  // namespace
