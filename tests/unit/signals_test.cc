#include "signals.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

namespace game {
namespace {

bool blocked(int signo) {
  sigset_t current;
  sigprocmask(SIG_SETMASK, nullptr, &current);
  return sigismember(&current, signo) == 1;
}

TEST(StopRequests, ASignalBecomesAStopRequestWithItsExitCode) {
  StopRequests stop;
  ASSERT_TRUE(stop.arm());
  EXPECT_EQ(stop.poll(), 0);
  ASSERT_EQ(::raise(SIGTERM), 0);  // blocked: waits in the signalfd instead of ending the test
  pollfd pfd{stop.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
  EXPECT_EQ(stop.poll(), 1);
  ASSERT_TRUE(stop.reason());
  EXPECT_EQ(stop.reason()->code, Exit::kTerminated);
  EXPECT_EQ(stop.reason()->message, "terminated (SIGTERM)");
  ASSERT_EQ(::raise(SIGINT), 0);
  EXPECT_EQ(stop.poll(), 2);
  EXPECT_EQ(stop.reason()->code, Exit::kTerminated);  // the first reason is the one reported
}

TEST(StopRequests, RestoresTheSignalMask) {
  ASSERT_FALSE(blocked(SIGINT));
  {
    StopRequests stop;
    ASSERT_TRUE(stop.arm());
    EXPECT_TRUE(blocked(SIGINT));
    EXPECT_TRUE(blocked(SIGHUP));
  }
  EXPECT_FALSE(blocked(SIGINT));
  EXPECT_FALSE(blocked(SIGHUP));
}

TEST(StopRequests, AnInternalStopCountsWithoutArming) {
  StopRequests stop;
  EXPECT_EQ(stop.fd(), -1);
  stop.stop(make_error(Exit::kIoErr, "cannot write standard output: Broken pipe"));
  EXPECT_EQ(stop.poll(), 1);
  EXPECT_EQ(stop.reason()->code, Exit::kIoErr);
}

}  // namespace
}  // namespace game
