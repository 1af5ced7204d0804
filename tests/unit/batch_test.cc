#include "batch.h"

#include <gtest/gtest.h>

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
  for (const char* number : {"0", "-0", "789", "-1", "+5", "007", "9223372036854775807",
                             "-9223372036854775808", "9223372036854775808", "-9223372036854775809", "0x10",
                             "1e3", "12abc", "--1", "-", "1 2", "1\t2", ""}) {
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

}  // namespace
