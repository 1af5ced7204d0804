// Protocol 2 known answers from Erlang/OTP asn1ct (tests/data/protocol2-vectors.txt, a copy of
// shared/protocol2/vectors.txt): every ClientMessage line is encoded byte for byte from its
// description, every ServerMessage line is decoded and compared field by field with its
// description, streams included (whole, byte by byte, and in chunks).
#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "protocol.h"
#include "text.h"
#include "vectors.h"

using namespace game;
using protocol::ResultMessage;

namespace {

struct Vector {
  std::string description;
  std::string bytes;
};

using test::from_hex;

std::vector<Vector> load() {
  std::vector<Vector> out;
  for (const auto& v : test::load_hex_vectors(GAME_VECTORS2_FILE))
    out.push_back({v.description, from_hex(v.hex)});
  return out;
}

// K1, K2: the key blobs on the first lines.
std::map<std::string, std::string> keys_of(const std::vector<Vector>& vectors) {
  std::map<std::string, std::string> keys;
  for (const Vector& v : vectors) {
    if (v.description.size() > 3 && v.description[0] == 'K' && v.description[2] == ' ')
      keys[v.description.substr(0, 2)] = v.bytes;
  }
  return keys;
}

// Splits "a, b [c, d], e" at the commas outside brackets.
std::vector<std::string> items(const std::string& list) {
  std::vector<std::string> out(1);
  int depth = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i] == '[') ++depth;
    if (list[i] == ']') --depth;
    if (depth == 0 && list.compare(i, 2, ", ") == 0) {
      out.emplace_back();
      ++i;
    } else {
      out.back() += list[i];
    }
  }
  return out;
}

// "open HEX", "submit seq N [Request] addScore V", "account seq N addKey key K1 label "L"", ...
std::string encode_client(const std::string& item, const std::map<std::string, std::string>& keys) {
  std::smatch m;
  std::string out;
  if (std::regex_match(item, m, std::regex(R"(open (?:stream )?([0-9a-f]{32}))"))) {
    protocol::StreamId stream{};
    const std::string raw = from_hex(m[1].str());
    std::copy(raw.begin(), raw.end(), stream.begin());
    protocol::encode_open(stream, out);
    return out;
  }
  if (!std::regex_match(item, m, std::regex(R"((submit|account) seq ([0-9]+) (?:Request )?(.*))"))) return "";
  const std::uint64_t seq = std::stoull(m[2].str());
  const std::string body = m[3].str();
  std::smatch b;
  protocol::Submission submission;
  if (std::regex_match(body, b, std::regex(R"(addScore (-?[0-9]+))"))) {
    submission = *protocol::make_add_score(b[1].str());
  } else if (std::regex_match(body, b, std::regex(R"(setUsername \"(.*)\")"))) {
    submission = *protocol::make_set_username(b[1].str());
  } else if (std::regex_match(body, b, std::regex(R"(addKey key (K[12]) label \"(.*)\")"))) {
    submission = protocol::AccountRequest{protocol::AddKey{keys.at(b[1].str()), b[2].str()}};
  } else if (std::regex_match(body, b, std::regex(R"(removeKey key (K[12]))"))) {
    submission = protocol::AccountRequest{protocol::RemoveKey{keys.at(b[1].str())}};
  } else if (body == "listKeys") {
    submission = protocol::AccountRequest{protocol::ListKeys{}};
  } else {
    return "";
  }
  EXPECT_EQ(m[1].str() == "account", std::holds_alternative<protocol::AccountRequest>(submission)) << item;
  protocol::encode_submission(seq, submission, out);
  return out;
}

// The ServerMessage a description item names, printed back in the description's words.
std::string describe(const protocol::ServerMessage& message, const std::map<std::string, std::string>& keys) {
  if (const auto* opened = std::get_if<protocol::Opened>(&message))
    return "opened lastSeq " + std::to_string(opened->last_seq);
  const auto& result = std::get<ResultMessage>(message);
  std::string out = "result seq " + std::to_string(result.seq) + " ";
  switch (result.kind) {
    case ResultMessage::Kind::kAccepted:
      return out + "accepted";
    case ResultMessage::Kind::kRejected:
      return out + "rejected \"" + result.reason + "\"";
    case ResultMessage::Kind::kDuplicate:
      return out + "duplicate";
    case ResultMessage::Kind::kKeys:
      break;
  }
  out += "keys [";
  for (std::size_t i = 0; i < result.keys.size(); ++i) {
    std::string name = "?";
    for (const auto& [k, blob] : keys)
      if (blob == result.keys[i].key) name = k;
    out += (i ? ", " : "") + name + " \"" + result.keys[i].label + "\" current " +
           (result.keys[i].current ? "TRUE" : "FALSE");
  }
  return out + "]";
}

// Feeds `bytes` in pieces of `step` and returns every message, described. With `shortcut`, as
// the session reads: the accepted result for the seq after the last result through
// take_accepted(), anything else through next().
std::vector<std::string> decode_all(const std::string& bytes, std::size_t step,
                                    const std::map<std::string, std::string>& keys, bool shortcut = false) {
  protocol::ServerMessageReader reader;
  std::vector<std::string> out;
  std::uint64_t due = 1;
  for (std::size_t i = 0; i < bytes.size(); i += step) {
    reader.feed(bytes.data() + i, std::min(step, bytes.size() - i));
    for (;;) {
      if (shortcut && reader.take_accepted(due)) {
        out.push_back("result seq " + std::to_string(due++) + " accepted");
        continue;
      }
      auto next = reader.next();
      EXPECT_TRUE(next) << next.error().message;
      if (!next || !*next) break;
      if (const auto* result = std::get_if<protocol::ResultMessage>(&**next)) due = result->seq + 1;
      out.push_back(describe(**next, keys));
    }
  }
  EXPECT_TRUE(reader.empty());
  return out;
}

// The other direction: each line decoded and encoded again gives the same bytes.
template <class Reader, class Encode>
std::string reencode(const std::string& bytes, Encode encode) {
  Reader reader;
  reader.feed(bytes.data(), bytes.size());
  std::string out;
  for (;;) {
    auto next = reader.next();
    EXPECT_TRUE(next) << next.error().message;
    if (!next || !*next) return out;
    encode(**next, out);
  }
}

std::string reencode_client(const std::string& bytes) {
  return reencode<protocol::ClientMessageReader>(bytes,
                                                 [](const protocol::ClientMessage& m, std::string& out) {
                                                   if (m.kind == protocol::ClientMessage::Kind::kOpen) {
                                                     protocol::encode_open(m.stream, out);
                                                   } else {
                                                     protocol::encode_submission(m.seq, m.submission, out);
                                                   }
                                                 });
}

std::string reencode_server(const std::string& bytes) {
  return reencode<protocol::ServerMessageReader>(bytes, protocol::encode_server_message);
}

TEST(Protocol2Vectors, EveryLineIsReproduced) {
  const auto vectors = load();
  ASSERT_GE(vectors.size(), 60u) << "vectors file missing or truncated: " << GAME_VECTORS2_FILE;
  const auto keys = keys_of(vectors);
  ASSERT_EQ(keys.size(), 2u);
  std::size_t client = 0, server = 0;
  for (const Vector& v : vectors) {
    const std::string& d = v.description;
    if (d.rfind("ClientMessage ", 0) == 0) {
      const bool stream = d.rfind("ClientMessage stream: ", 0) == 0;
      std::string encoded;
      for (const std::string& item : items(d.substr(stream ? 22 : 14))) {
        const std::string one = encode_client(item, keys);
        ASSERT_FALSE(one.empty()) << "unrecognised vector item '" << item << "' in " << d;
        encoded += one;
      }
      EXPECT_EQ(text::to_hex(encoded), text::to_hex(v.bytes)) << d;
      EXPECT_EQ(text::to_hex(reencode_client(v.bytes)), text::to_hex(v.bytes)) << d;
      ++client;
    } else if (d.rfind("ServerMessage ", 0) == 0) {
      const bool stream = d.rfind("ServerMessage stream: ", 0) == 0;
      const auto expected = items(d.substr(stream ? 22 : 14));
      for (const std::size_t step : {v.bytes.size(), std::size_t{1}, std::size_t{7}}) {
        EXPECT_EQ(decode_all(v.bytes, step, keys), expected) << d << " (fed " << step << " bytes at a time)";
        EXPECT_EQ(decode_all(v.bytes, step, keys, true), expected) << d << " (shortcut, fed " << step << ")";
      }
      EXPECT_EQ(text::to_hex(reencode_server(v.bytes)), text::to_hex(v.bytes)) << d;
      ++server;
    } else {
      ASSERT_TRUE(keys.count(d.substr(0, 2))) << "unrecognised vector: " << d;
    }
  }
  EXPECT_EQ(client + server + keys.size(), vectors.size());
  EXPECT_GE(client, 40u);
  EXPECT_GE(server, 10u);
}

Result<std::optional<protocol::ServerMessage>> first(const std::string& hex) {
  protocol::ServerMessageReader reader;
  const std::string bytes = from_hex(hex);
  reader.feed(bytes.data(), bytes.size());
  return reader.next();
}

TEST(ServerMessageReader, RefusesWhatIsNotTheProtocol) {
  for (const char* hex : {
           "a1073005a003020100",                                // result without an outcome
           "a10d300ba003020100a104a0020500",                    // result seq 0
           "a10d300ba0030201ffa104a0020500",                    // result seq -1
           "a0073005a0030201ff",                                // opened lastSeq -1
           "a10c300aa003020101a103a00105",                      // an inner length beyond its parent
           "a0803005a0030201000000",                            // indefinite length
           "a2020500",                                          // a tag that is no ServerMessage
           "a0847fffffff",                                      // 2 GB claimed: refused before buffering
           "a1163014a00c020a01000000000000000000a104a0020500",  // seq beyond 2^63
       }) {
    std::string h(hex);
    h.erase(std::remove(h.begin(), h.end(), ' '), h.end());
    auto r = first(h);
    ASSERT_FALSE(r) << hex;
    EXPECT_EQ(r.error().code, Exit::kProtocol) << hex;
  }
}

// Every server vector end to end: the session's reading (common results by the shortcut) and
// next() alone agree message for message, however the stream is split.
TEST(ServerMessageReader, ShortcutAndGenericReadingAgreeOnAStream) {
  const auto vectors = load();
  const auto keys = keys_of(vectors);
  std::string stream;
  for (const Vector& v : vectors) {
    if (v.description.rfind("ServerMessage ", 0) == 0) stream += v.bytes;
  }
  const auto expected = decode_all(stream, stream.size(), keys);
  ASSERT_GE(expected.size(), 15u);
  for (const std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{13}, stream.size()})
    EXPECT_EQ(decode_all(stream, step, keys, true), expected) << "fed " << step << " bytes at a time";
}

TEST(ServerMessageReader, WaitsForTheRestOfAMessage) {
  auto r = first("a10d300ba003020101a104a002");
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
}

}  // namespace
