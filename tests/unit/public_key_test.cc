#include "public_key.h"

#include <gtest/gtest.h>

using namespace game;

namespace {

// Keys made by ssh-keygen; the expected columns are what `ssh-keygen -lf` printed for them.
const char* const kEd25519 =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1/Efc3Sd49q+tg3XC5y2sPEvRmPjyW+DT3hjINHql5 a comment";
const char* const kEcdsa384 =
    "ecdsa-sha2-nistp384 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBJX1drL0yjM6tAPY9ZHMG+6+BYmJir8VnfrmCcswGp0+"
    "N1gEUYek1r"
    "ecI5/de0250NJ45nkR630q84bWFE8nnKptJGA/mxm2Idbi52cQpOmpea9pcf3I6Uei/0AkeJAvIA==";
const char* const kRsa3072 =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABgQCVmWg8WYayVKsIpAqvi8Exw7yLjJGYCzQW5VYaYwMLkmeTpv71uiABNtMouqw0MnSyEZ3n1/"
    "34p9tI6bTHIINF+/NaFp4uZhre5kuOiUmp6Ry4TsbYiJNo315EjxR5hnDTmzyQSMMsAse3M0HjJQ2OGpnkj0E/kWTxKA30IP/"
    "4yDVi41DI3KtMszXPOoRjuKpk0ABrlse7Ww6knw0acfZLoKFDkih05PhcAWTNUYRG7x8t4vxud21FKKJZWR9pbiA8dcEl7DLcZR+"
    "dNxQdbdn9fRvaoxoX1DXZEADbjLGN0HMzvJfUzTbq/J7vEoVYsiQiya0ytY82qeRjdE5Ac9dX17pn1d+Mq7m+MpYvNYCsbr/"
    "NgyeLDEF0cbzUk7ff4ys0HDD816TO/8tHoN7MCSyQgPUf/luLieUedCcE6OQNfxG6LUhDR7TO2o/3Vh/"
    "qlvie8fTwmlv84uvJsUBS0pdothY0kaDm+X2/RYTXsxEoqu4qSuDFypfkuqI7m0kyrA0=";

TEST(PublicKey, ShowsWhatSshKeygenShows) {
  struct Case {
    const char* line;
    int bits;
    const char* fingerprint;
    const char* kind;
  };
  for (const Case& c : {Case{kEd25519, 256, "SHA256:5A/nYJwPNtw8D+D6ik5J8+pxH8i26DEf8gMgO+SnLNc", "ED25519"},
                        Case{kEcdsa384, 384, "SHA256:sU5C/wKwOC6u6rDDklm1mcrJ1Ec0VcfnaBHuu/TUALs", "ECDSA"},
                        Case{kRsa3072, 3072, "SHA256:4NAGI2mhMvKgvnjjgBa++idLlp+DlAmttgbOm+GqWbQ", "RSA"}}) {
    auto key = PublicKey::from_line(c.line);
    ASSERT_TRUE(key) << key.error().message;
    EXPECT_EQ(key->bits(), c.bits) << c.line;
    EXPECT_EQ(key->fingerprint(), c.fingerprint);
    EXPECT_EQ(key->kind(), c.kind);
    const std::string line(c.line);
    EXPECT_EQ(key->line(), line.substr(0, line.find(' ', line.find(' ') + 1)));  // the comment dropped
    auto again = PublicKey::from_blob(key->blob);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->line(), key->line());
  }
}

TEST(PublicKey, RefusesWhatIsNotAPublicKey) {
  for (const char* bad : {"", "ssh-ed25519", "ssh-ed25519 !!!!", "ssh-foo AAAA",
                          "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIN1/Efc3Sd49q+tg3XC5y2sPEvRmPjyW+DT3hjINHql5",
                          "-----BEGIN OPENSSH PRIVATE KEY-----"}) {
    auto key = PublicKey::from_line(bad);
    ASSERT_FALSE(key) << bad;
    EXPECT_EQ(key.error().code, Exit::kUsage);
    EXPECT_NE(key.error().message.find("not an SSH public key"), std::string::npos);
  }
  EXPECT_FALSE(PublicKey::from_blob(std::string("\0\0\0\x09ssh", 7)));
}

}  // namespace
