#include "config.h"

#include <gtest/gtest.h>

using namespace game;

namespace {

const char* const kUuid = "0b3c5a52-7f0e-4f43-9d1c-2a8f6f3e9b10";

std::string base() { return new_config_text(kUuid, "~/.game/id_ed25519"); }

TEST(Config, NewConfigRoundTrips) {
  auto config = parse_config(base(), "cfg");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->uuid, kUuid);
  EXPECT_EQ(config->key, "~/.game/id_ed25519");
  EXPECT_TRUE(config->servers.empty());
}

TEST(Config, ErrorsCarryLineAndColumn) {
  auto broken = parse_config("[identity]\nuuid = \"x\nkey = 1\n", "/h/.gameconfig");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, Exit::kConfig);
  EXPECT_EQ(broken.error().message.rfind("/h/.gameconfig:2:", 0), 0u) << broken.error().message;

  auto wrong_type = parse_config(base() + "[servers.a]\nhost = \"h\"\nport = \"9022\"\n", "c");
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(wrong_type.error().message, "c:9:8: servers.a.port must be an integer from 1 to 65535");

  auto bad_uuid = parse_config("[identity]\nuuid = \"nope\"\nkey = \"k\"\n", "c");
  ASSERT_FALSE(bad_uuid);
  EXPECT_EQ(bad_uuid.error().message.rfind("c:2:8: identity.uuid must be a UUID", 0), 0u);

  auto bad_default = parse_config("default_server = \"x\"\n" + base(), "c");
  ASSERT_FALSE(bad_default);
  EXPECT_NE(bad_default.error().message.find("has no [servers.x] table"), std::string::npos);
}

TEST(Config, RecordingKeepsCommentsOrderAndUnknownKeysByteForByte) {
  const std::string original =
      "# my game setup   \n"
      "[identity]\n"
      "uuid = \"0b3c5a52-7f0e-4f43-9d1c-2a8f6f3e9b10\"  # keep me\n"
      "key = \"~/.game/id_ed25519\"\n"
      "favourite_colour = \"blue\"\n"
      "\n"
      "[servers.main]   # the usual one\n"
      "host = \"game.example.org\"\n"
      "port = 9022 # default\n"
      "# trailing comment in the table\n"
      "\n"
      "[servers.other]\n"
      "host = \"Ω.example\"\n";
  auto edited = set_table_value(original, "c", {"servers", "main"}, "host_key", toml_string("SHA256:abc"));
  ASSERT_TRUE(edited) << edited.error().message;
  const std::string expected_after_main =
      "port = 9022 # default\n"
      "host_key = \"SHA256:abc\"\n"
      "# trailing comment in the table\n";
  EXPECT_NE(edited->find(expected_after_main), std::string::npos) << *edited;
  std::string without = *edited;
  without.erase(without.find("host_key = \"SHA256:abc\"\n"), 24);
  EXPECT_EQ(without, original);

  // Replacing a value in place touches only the value.
  auto replaced = set_table_value(*edited, "c", {"servers", "other"}, "host", toml_string("new.example"));
  ASSERT_TRUE(replaced);
  std::string expected = *edited;
  expected.replace(expected.find("\"Ω.example\""), std::string("\"Ω.example\"").size(), "\"new.example\"");
  EXPECT_EQ(*replaced, expected);

  auto with_default = set_top_level_value(original, "c", "default_server", toml_string("main"));
  ASSERT_TRUE(with_default);
  EXPECT_EQ(*with_default, "# my game setup   \ndefault_server = \"main\"\n\n" + original.substr(19));
  auto parsed = parse_config(*with_default, "c");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->default_server, "main");
}

TEST(Config, AddsAMissingServerTableAtTheEnd) {
  const std::string original = base();
  auto edited =
      set_table_value(original, "c", {"servers", "127.0.0.1:4000"}, "host", toml_string("127.0.0.1"));
  ASSERT_TRUE(edited);
  EXPECT_EQ(*edited, original + "\n[servers.\"127.0.0.1:4000\"]\nhost = \"127.0.0.1\"\n");
  auto config = parse_config(*edited, "c");
  ASSERT_TRUE(config) << config.error().message;
  ASSERT_NE(config->find_server("127.0.0.1:4000"), nullptr);
}

TEST(Config, ServerSettings) {
  auto config =
      parse_config(base() +
                       "[servers.cluster]\naddresses = [\"a:1\", \"[::1]:2\"]\nsubsystem = \"g2\"\n"
                       "acks = \"yes\"\nhost_key = \"SHA256:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
                   "c");
  ASSERT_TRUE(config) << config.error().message;
  const ServerConfig* s = config->find_server("cluster");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->addresses, (std::vector<std::string>{"a:1", "[::1]:2"}));
  EXPECT_EQ(s->subsystem, "g2");
  EXPECT_EQ(s->acks, AckMode::kYes);
  EXPECT_EQ(s->host_key, "SHA256:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
  auto bad_acks = parse_config(base() + "[servers.a]\nhost = \"h\"\nacks = \"maybe\"\n", "c");
  ASSERT_FALSE(bad_acks);
  EXPECT_NE(bad_acks.error().message.find("acks must be"), std::string::npos);
}

}  // namespace

namespace {

TEST(Config, NestedHostKeysTableIsCreatedAndRead) {
  const std::string original = base() + "\n[servers.c]\naddresses = [\"a:1\", \"b:2\"]\n";
  auto edited = set_table_value(original, "c", {"servers", "c", "host_keys"}, "a:1",
                                toml_string("SHA256:1111111111111111111111111111111111111111111"));
  ASSERT_TRUE(edited) << edited.error().message;
  EXPECT_EQ(
      *edited,
      original +
          "\n[servers.c.host_keys]\n\"a:1\" = \"SHA256:1111111111111111111111111111111111111111111\"\n");
  auto again = set_table_value(*edited, "c", {"servers", "c", "host_keys"}, "b:2",
                               toml_string("SHA256:2222222222222222222222222222222222222222222"));
  ASSERT_TRUE(again);
  auto config = parse_config(*again, "c");
  ASSERT_TRUE(config) << config.error().message;
  const ServerConfig* server = config->find_server("c");
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->node_keys.at("a:1"), "SHA256:1111111111111111111111111111111111111111111");
  EXPECT_EQ(server->node_keys.at("b:2"), "SHA256:2222222222222222222222222222222222222222222");
}

TEST(Config, RefusesToEditInsideAnInlineTable) {
  const std::string original = "servers = { x = { host = \"h\" } }\n" + base();
  auto edited = set_table_value(original, "c", {"servers", "x"}, "host_key", toml_string("SHA256:k"));
  ASSERT_FALSE(edited);
  EXPECT_NE(edited.error().message.find("not a plain [table]"), std::string::npos) << edited.error().message;
}

TEST(IdentityBlob, RoundTripsAKeyFileExactly) {
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE "
      "KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
      "-----END OPENSSH PRIVATE KEY-----\n";
  const std::string text = identity_blob_text({kUuid, key, "", {}});
  auto blob = parse_identity_blob(text, "backup.txt");
  ASSERT_TRUE(blob) << blob.error().message;
  EXPECT_EQ(blob->uuid, kUuid);
  EXPECT_EQ(blob->private_key, key);
  auto wrong = parse_identity_blob("uuid = 1\n", "backup.txt");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message.rfind("backup.txt:1:8:", 0), 0u) << wrong.error().message;
}

}  // namespace

TEST(Config, RotationFieldsAreReadAndRemovedWithTheirLineOnly) {
  const std::string original =
      base() + "rotating_to = \"~/.game/id_ed25519-1\"\n# kept\n[servers.a]\nhost = \"h\"\n";
  auto config = parse_config(original, "c");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->rotating_to, "~/.game/id_ed25519-1");
  EXPECT_EQ(config->rotated_from, "");
  auto removed = remove_table_value(original, "c", {"identity"}, "rotating_to");
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, base() + "# kept\n[servers.a]\nhost = \"h\"\n");
  auto unchanged = remove_table_value(*removed, "c", {"identity"}, "rotated_from");
  ASSERT_TRUE(unchanged);
  EXPECT_EQ(*unchanged, *removed);
}
