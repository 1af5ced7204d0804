#include "batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "session.h"
#include "text.h"

using namespace game;

namespace {

std::string hex_of(std::string_view line) {
  auto parsed = parse_batch_line(line);
  EXPECT_TRUE(parsed) << line;
  if (!parsed || !*parsed) return "";
  std::string out;
  protocol::encode(**parsed, out);
  return text::to_hex(out);
}

std::string error_of(std::string_view line) {
  auto parsed = parse_batch_line(line);
  EXPECT_FALSE(parsed) << line;
  return parsed ? "" : parsed.error().message;
}

TEST(BatchLine, CommandsCommentsAndBlanks) {
  EXPECT_EQ(hex_of("score 789"), "a1083006a00402020315");
  EXPECT_EQ(hex_of("  score   789  \r"), "a1083006a00402020315");
  EXPECT_EQ(hex_of("setname bob"), "a0093007a0050c03626f62");
  EXPECT_EQ(hex_of("setname \"\""), "a0063004a0020c00");
  auto blank = parse_batch_line("   ");
  ASSERT_TRUE(blank);
  EXPECT_FALSE(*blank);
  auto comment = parse_batch_line("  # score 5");
  ASSERT_TRUE(comment);
  EXPECT_FALSE(*comment);
}

TEST(BatchLine, NamesKeepInnerSpacesAndQuotesUnescape) {
  auto name_of = [](std::string_view line) {
    auto parsed = parse_batch_line(line);
    EXPECT_TRUE(parsed && *parsed) << line;
    return std::get<protocol::SetUsername>(**parsed).name;
  };
  EXPECT_EQ(name_of("setname Zoë the  Great"), "Zoë the  Great");
  EXPECT_EQ(name_of("setname \"  padded  \""), "  padded  ");
  EXPECT_EQ(name_of(R"(setname "say \"hi\" \\o/")"), R"(say "hi" \o/)");
  EXPECT_EQ(name_of("setname #1 fan"), "#1 fan");
}

TEST(BatchLine, ErrorsSayWhatIsWrong) {
  EXPECT_NE(error_of("score 12abc").find("not a whole number"), std::string::npos);
  EXPECT_NE(error_of("score 1 2").find("exactly one value"), std::string::npos);
  EXPECT_NE(error_of("score").find("needs a value"), std::string::npos);
  EXPECT_NE(error_of("score 99999999999999999999").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("setname").find("needs a name"), std::string::npos);
  EXPECT_NE(error_of("setname \"open").find("unterminated"), std::string::npos);
  EXPECT_NE(error_of("setname \"a\\nb\"").find("escapes"), std::string::npos);
  EXPECT_NE(error_of("setname bad\xff").find("UTF-8"), std::string::npos);
  EXPECT_NE(error_of("scroe 5").find("unknown command 'scroe'"), std::string::npos);
}

// `score N` exactly is read by a shortcut; with surrounding spaces the same line takes the
// general path. Both must mean the same for every number, valid or not.
TEST(BatchLine, PlainScoreLinesMeanWhatTheGeneralSyntaxSays) {
  for (const char* number : {"0",
                             "-0",
                             "789",
                             "-1",
                             "+5",
                             "007",
                             "9223372036854775807",
                             "-9223372036854775808",
                             "9223372036854775808",
                             "-9223372036854775809",
                             "0x10",
                             "1e3",
                             "12abc",
                             "--1",
                             "-",
                             "1 2",
                             "1\t2",
                             "",
                             "999999999999999999",
                             "-999999999999999999",
                             "1000000000000000000",
                             "-1000000000000000000",
                             "0000000000000000000001",
                             "12 ",
                             "1-",
                             "9/",
                             ":1"}) {
    const std::string plain = std::string("score ") + number;
    const auto fast = parse_batch_line(plain);
    const auto general = parse_batch_line("  " + plain + " ");
    ASSERT_EQ(static_cast<bool>(fast), static_cast<bool>(general)) << plain;
    if (fast) {
      ASSERT_TRUE(*fast && *general) << plain;
      EXPECT_EQ(std::get<protocol::AddScore>(**fast).value, std::get<protocol::AddScore>(**general).value)
          << plain;
    } else {
      EXPECT_EQ(fast.error().message, general.error().message) << plain;
    }
  }
}

// LineReader's shortcut for `score N` lines takes a line only if the parser reads the same value
// from it, and leaves every other line to next() untouched: for numbers of every length (eight
// bytes are looked at as one word), with the file ending right after the line or more behind it.
TEST(LineReader, PlainScoreShortcutAgreesWithTheParser) {
  std::vector<std::string> numbers = {"0",
                                      "-0",
                                      "7",
                                      "-1",
                                      "+5",
                                      "007",
                                      "-",
                                      "",
                                      "1 2",
                                      "1\r",
                                      "12abc",
                                      "1.5",
                                      "9/",
                                      ":1",
                                      "\xb5",
                                      "--1",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "9223372036854775808",
                                      "0000000000000000000001"};
  for (std::size_t digits = 1; digits <= 20; ++digits) {
    numbers.push_back(std::string(digits, '9'));
    numbers.push_back("-" + std::string(digits - 1, '0') + "8");
    numbers.push_back(std::string(digits, '1') + "x");
  }
  int taken = 0;
  for (const std::string& number : numbers) {
    for (const std::string tail : {"", "\n", "\nscore 12345678\n", "\n#"}) {
      const std::string line = "score " + number;
      const std::string content = "#\n" + line + tail;
      std::FILE* file = std::tmpfile();
      ASSERT_NE(file, nullptr);
      ASSERT_EQ(std::fwrite(content.data(), 1, content.size(), file), content.size());
      std::rewind(file);
      LineReader checker(file);  // the checking pass takes exactly the same lines
      ASSERT_TRUE(checker.next());
      const std::uint64_t skipped = checker.skip_plain_scores();
      EXPECT_EQ(checker.number(), 1 + skipped) << line;
      std::rewind(file);
      LineReader reader(file);
      ASSERT_TRUE(reader.next());  // "#", and the rest of the file into the buffer
      PlainScore score{};
      const auto value = reader.next_plain_scores(&score, 1) == 1 ? std::optional(score.value) : std::nullopt;
      EXPECT_EQ(skipped > 0, value.has_value()) << line;
      // The line behind, `score 12345678`, is taken in the same call.
      if (value) {
        EXPECT_EQ(skipped, tail == "\nscore 12345678\n" ? 2u : 1u) << line;
      }
      const auto parsed = parse_batch_line(line);
      if (value) {
        ++taken;
        ASSERT_TRUE(parsed && *parsed) << line;
        EXPECT_EQ(*value, std::get<protocol::AddScore>(**parsed).value) << line;
        EXPECT_EQ(reader.number(), 2u);
        EXPECT_FALSE(tail.empty()) << line;  // a last line without a newline goes the general way
      } else {
        auto next = reader.next();
        ASSERT_TRUE(next && *next) << line;
        EXPECT_EQ(**next, line);
      }
      if (tail.size() > 1) {
        auto rest = reader.next();
        ASSERT_TRUE(rest && *rest) << line;
        EXPECT_EQ(**rest, tail.substr(1, tail.find('\n', 1) - 1)) << line;
      }
      std::fclose(file);
    }
  }
  EXPECT_GT(taken, 100);  // the shortcut is taken for the common lines
}

// What LineReader hands out, line by line: the text, or "ERROR: ..." with the line's number.
std::vector<std::string> read_lines(const std::string& content) {
  std::FILE* file = std::tmpfile();
  EXPECT_NE(file, nullptr);
  EXPECT_EQ(std::fwrite(content.data(), 1, content.size(), file), content.size());
  std::rewind(file);
  LineReader reader(file);
  std::vector<std::string> out;
  for (;;) {
    auto line = reader.next();
    if (line && !*line) break;
    out.push_back(line ? std::string(**line)
                       : "ERROR " + std::to_string(reader.number()) + ": " + line.error().message);
  }
  std::fclose(file);
  return out;
}

// Lines across the reader's block boundaries (many, of every short length), the longest line
// allowed and one byte more, one over several blocks, the last line without a newline (also a
// too-long one): numbered as a text editor numbers them.
TEST(LineReader, SplitsLinesAcrossBlocksAndSkipsTooLongOnes) {
  std::vector<std::string> expected;
  std::string content;
  const auto add = [&](const std::string& line, bool newline = true) {
    content += line + (newline ? "\n" : "");
    expected.push_back(line.size() > kMaxLineBytes
                           ? "ERROR " + std::to_string(expected.size() + 1) + ": line longer than 65536 bytes"
                           : line);
  };
  for (int i = 0; content.size() < 3 * LineReader::kBufferBytes; ++i)
    add("score " + std::to_string(i * 7919));
  add(std::string(kMaxLineBytes, 'x'));
  add("");
  add(std::string(kMaxLineBytes + 1, 'y'));
  add("score 1");
  add(std::string(3 * LineReader::kBufferBytes, 'z'));
  for (int i = 0; i < 100000; ++i) add(std::string(static_cast<std::size_t>(i % 13), 'a'));
  add("last line, no newline", false);
  EXPECT_EQ(read_lines(content), expected);
  EXPECT_EQ(read_lines(content + "\n" + std::string(kMaxLineBytes + 5, 'w')).back(),
            "ERROR " + std::to_string(expected.size() + 1) + ": line longer than 65536 bytes");
  EXPECT_EQ(read_lines(""), std::vector<std::string>{});
  EXPECT_EQ(read_lines("\n"), std::vector<std::string>{""});
}

TEST(LineQueue, KeepsOrderAcrossRunsInConstantSpace) {
  LineQueue q;
  for (std::uint64_t line = 1; line <= 1000000; ++line) q.push(line);
  q.push(1000005);
  EXPECT_EQ(q.size(), 1000001u);
  for (std::uint64_t line = 1; line <= 1000000; ++line) ASSERT_EQ(q.pop(), line);
  EXPECT_EQ(q.front(), 1000005u);
  EXPECT_EQ(q.pop(), 1000005u);
  EXPECT_TRUE(q.empty());
}

struct NoInvalidLines : InvalidLines {
  void on_invalid(std::uint64_t line, const std::string& what) override {
    ADD_FAILURE() << "line " << line << ": " << what;
  }
};

// The checking pass counts the requests from --from-line on, wherever --from-line falls in a run
// of plain `score N` lines that it takes at once, and the sending pass sends exactly those.
TEST(FileBatch, CountsAndSendsTheRequestsFromTheFromLineOn) {
  std::string content;
  for (int i = 1; i <= 20; ++i) content += i == 8 ? "# a comment\n" : "score " + std::to_string(i) + "\n";
  content += "setname bob\nscore 21\n";  // lines 21 and 22
  const std::string path = testing::TempDir() + "/from_line_batch.txt";
  {
    std::FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(std::fwrite(content.data(), 1, content.size(), file), content.size());
    std::fclose(file);
  }
  for (const std::uint64_t from : {1u, 2u, 7u, 8u, 9u, 20u, 21u, 22u}) {
    auto batch = FileBatch::open(path, from);
    ASSERT_TRUE(batch) << batch.error().message;
    NoInvalidLines sink;
    ASSERT_TRUE((*batch)->validate(sink));
    std::vector<std::uint64_t> sent;
    Outgoing out;
    for (;;) {
      auto next = (*batch)->next(out);
      ASSERT_TRUE(next) << next.error().message;
      if (*next == RequestSource::Next::kEnd) break;
      sent.push_back(out.line);
    }
    std::vector<std::uint64_t> expected;
    for (std::uint64_t line = from; line <= 22; ++line) {
      if (line != 8) expected.push_back(line);
    }
    EXPECT_EQ(sent, expected) << "--from-line " << from;
    EXPECT_EQ((*batch)->requests(), expected.size()) << "--from-line " << from;
  }
  std::remove(path.c_str());
}

// What the sending pass hands out, as "LINE VALUE" for a score and "LINE name" for anything
// else: through next() alone, or taking plain scores `bulk` at a time (0: never) as the pump does.
std::vector<std::string> sent_requests(const std::string& path, std::uint64_t from, std::size_t bulk) {
  auto batch = FileBatch::open(path, from);
  EXPECT_TRUE(batch) << batch.error().message;
  NoInvalidLines sink;
  EXPECT_TRUE((*batch)->validate(sink));
  std::vector<std::string> sent;
  std::vector<PlainScore> scores(std::max<std::size_t>(bulk, 1));
  Outgoing out;
  for (;;) {
    if (const std::size_t n = bulk == 0 ? 0 : (*batch)->next_scores(scores.data(), bulk); n > 0) {
      EXPECT_LE(n, bulk);
      for (std::size_t i = 0; i < n; ++i)
        sent.push_back(std::to_string(scores[i].line) + " " + std::to_string(scores[i].value));
      continue;
    }
    auto next = (*batch)->next(out);
    EXPECT_TRUE(next) << next.error().message;
    if (!next || *next == RequestSource::Next::kEnd) break;
    const auto& request = std::get<protocol::Request>(out.request);
    const auto* score = std::get_if<protocol::AddScore>(&request);
    sent.push_back(std::to_string(out.line) + " " +
                   (score != nullptr ? std::to_string(score->value) : "name"));
  }
  return sent;
}

// The pump takes most scores in bulk and the rest one by one: across the reader's blocks,
// comments, lines the shortcut leaves to the parser and --from-line, the same requests either way.
TEST(FileBatch, ScoresTakenInBulkAreTheRequestsNextHandsOut) {
  std::string content;
  for (int i = 1; content.size() < 3 * LineReader::kBufferBytes; ++i) {
    if (i % 1000 == 0)
      content += "# comment\n";
    else if (i % 777 == 0)
      content += "  score 5 \n";  // the general parser's
    else if (i % 555 == 0)
      content += "setname n\n";
    else
      content += "score " + std::to_string(i % 3 == 0 ? -i * 31 : i * 7919) + "\n";
  }
  const std::string path = testing::TempDir() + "/bulk_batch.txt";
  {
    std::FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(std::fwrite(content.data(), 1, content.size(), file), content.size());
    std::fclose(file);
  }
  for (const std::uint64_t from : {1u, 2u, 999u, 1000u, 20001u}) {
    const std::vector<std::string> one_by_one = sent_requests(path, from, 0);
    ASSERT_GT(one_by_one.size(), 5000u);
    EXPECT_EQ(one_by_one.front().substr(0, one_by_one.front().find(' ')),
              std::to_string(from == 1000 ? 1001 : from));
    for (const std::size_t bulk : {1u, 7u, 256u})
      EXPECT_EQ(sent_requests(path, from, bulk), one_by_one)
          << "--from-line " << from << ", " << bulk << " at a time";
  }
  std::remove(path.c_str());
}

}  // namespace
