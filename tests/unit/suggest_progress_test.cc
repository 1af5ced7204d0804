#include <gtest/gtest.h>

#include "progress.h"
#include "suggest.h"

using namespace game;
using namespace std::chrono_literals;

namespace {
const std::vector<std::string> kCommands = {"setname", "score", "whoami",  "batch",
                                            "init",    "trust", "identity"};
}

TEST(Suggest, TypoOfACommandNamesIt) {
  EXPECT_EQ(did_you_mean("scroe", kCommands), "; did you mean score?");  // a swap is one edit
  EXPECT_EQ(did_you_mean("setnam", kCommands), "; did you mean setname?");
  EXPECT_EQ(did_you_mean("bach", kCommands), "; did you mean batch?");
  EXPECT_EQ(did_you_mean("whomai", kCommands), "; did you mean whoami?");
}

TEST(Suggest, NothingCloseSaysNothing) {
  EXPECT_EQ(did_you_mean("deploy", kCommands), "");
  EXPECT_EQ(did_you_mean("x", kCommands), "");      // one letter is not a typo of "init"
  EXPECT_EQ(did_you_mean("score", kCommands), "");  // the word itself is no suggestion
}

TEST(Suggest, EqualDistancesAreAllNamed) {
  EXPECT_EQ(did_you_mean("arenc", {"arena", "arenb", "faraway"}), "; did you mean arena or arenb?");
  EXPECT_EQ(close_matches("nod2", {"node1", "node2", "node3"}), std::vector<std::string>{"node2"});
}

TEST(Progress, CountsAgainstTheTotal) {
  const auto start = ProgressMeter::Clock::time_point{};
  ProgressMeter meter(1000, start);
  EXPECT_EQ(meter.render(start), "sent 0 of 1000, acknowledged 0 (0%)");
  for (int i = 0; i < 500; ++i) meter.sent();
  for (int i = 0; i < 250; ++i) meter.acknowledged();
  // 250 acknowledged in 2 s: 125 lines/s, 750 to go: 6 s left.
  EXPECT_EQ(meter.render(start + 2s), "sent 500 of 1000, acknowledged 250 (25%), 125 lines/s, about 6s left");
}

TEST(Progress, WithoutATotalShowsCountsAndRate) {
  const auto start = ProgressMeter::Clock::time_point{};
  ProgressMeter meter(std::nullopt, start);
  for (int i = 0; i < 30; ++i) meter.sent();
  EXPECT_EQ(meter.render(start + 500ms), "sent 30, acknowledged 0");  // under a second: no rate yet
  // Nothing acknowledged (a server that does not acknowledge): the pace of sending.
  EXPECT_EQ(meter.render(start + 3s), "sent 30, acknowledged 0, 10 lines/s");
}

TEST(Progress, AnHourLeftReadsInHours) {
  const auto start = ProgressMeter::Clock::time_point{};
  ProgressMeter meter(1000000, start);
  for (int i = 0; i < 100; ++i) meter.sent();
  for (int i = 0; i < 100; ++i) meter.acknowledged();
  EXPECT_EQ(meter.render(start + 1s),
            "sent 100 of 1000000, acknowledged 100 (0%), 100 lines/s, about 2h46m left");
}

TEST(Progress, RedrawsAtMostFiveTimesASecond) {
  const auto start = ProgressMeter::Clock::time_point{};
  ProgressMeter meter(10, start);
  EXPECT_TRUE(meter.due(start));
  EXPECT_FALSE(meter.due(start + 100ms));
  EXPECT_FALSE(meter.due(start + 199ms));
  EXPECT_TRUE(meter.due(start + 200ms));
  EXPECT_FALSE(meter.due(start + 300ms));
}

TEST(Progress, DurationsReadLikeAClock) {
  EXPECT_EQ(format_duration(4s), "4s");
  EXPECT_EQ(format_duration(185s), "3m05s");
  EXPECT_EQ(format_duration(7620s), "2h07m");
}
