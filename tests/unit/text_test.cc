#include "text.h"

#include <gtest/gtest.h>

#include "identity.h"
#include "transport.h"

using namespace game;

TEST(Text, PrintableEscapesTerminalControls) {
  EXPECT_EQ(text::printable("ok name"), "ok name");
  EXPECT_EQ(text::printable("a\x1b[31mred"), "a\\x1b[31mred");
  EXPECT_EQ(text::printable("\xc2\x9b"
                            "2J"),
            "\\xc2\\x9b2J");  // C1 CSI
  EXPECT_EQ(text::printable("bad\xff"), "bad\\xff");
  EXPECT_EQ(text::printable("Zoë"), "Zoë");
}

TEST(Uuid, IsVersion4AndRandom) {
  const std::string a = generate_uuid();
  const std::string b = generate_uuid();
  EXPECT_TRUE(text::is_uuid(a)) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos) << a;
}

TEST(Endpoint, ParsesHostsPortsAndIpv6) {
  auto e = parse_endpoint("example.org", 9022);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "example.org");
  EXPECT_EQ(e->port, 9022);
  e = parse_endpoint("127.0.0.1:2222", 9022);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->display(), "127.0.0.1:2222");
  e = parse_endpoint("[::1]:9023", 9022);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 9023);
  EXPECT_EQ(e->display(), "[::1]:9023");
  e = parse_endpoint("::1", 9022);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->display(), "[::1]:9022");
  for (const char* bad : {"", ":22", "host:", "host:0", "host:65536", "host:x", "[::1", "[::1]x"}) {
    EXPECT_FALSE(parse_endpoint(bad, 9022)) << bad;
  }
}

TEST(ShellQuote, PlainWordsStayAndEverythingElseIsSingleQuoted) {
  EXPECT_EQ(text::shell_quote("/tmp/a-b_c.txt"), "/tmp/a-b_c.txt");
  EXPECT_EQ(text::shell_quote("127.0.0.1:9022"), "127.0.0.1:9022");
  EXPECT_EQ(text::shell_quote("my games/week 1.txt"), "'my games/week 1.txt'");
  EXPECT_EQ(text::shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(text::shell_quote("$HOME;`x`"), "'$HOME;`x`'");
  EXPECT_EQ(text::shell_quote(""), "''");
}
