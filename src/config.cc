// The only translation unit that includes toml++ (slow to compile).
#include "config.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "text.h"

namespace game {
namespace {

Error config_error(const std::string& path, const toml::source_position& pos, const std::string& what) {
  return make_error(Exit::kConfig, path + ":" + std::to_string(pos.line) + ":" +
                                       std::to_string(pos.column) + ": " + what);
}

Result<toml::table> parse_toml(const std::string& text, const std::string& path) {
  try {
    return toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    return config_error(path, e.source().begin, std::string(e.description()));
  }
}

// Byte offset of a toml++ position (1-based line, 1-based column counted in code points).
std::size_t offset_of(const std::string& text, const toml::source_position& pos) {
  std::size_t offset = 0;
  for (toml::source_index line = 1; line < pos.line && offset < text.size(); ++offset) {
    if (text[offset] == '\n') ++line;
  }
  for (toml::source_index column = 1; column < pos.column && offset < text.size(); ++column) {
    ++offset;
    while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xc0) == 0x80) ++offset;
  }
  return offset;
}

std::size_t start_of_line_after(const std::string& text, toml::source_index line) {
  return offset_of(text, toml::source_position{line + 1, 1});
}

// Reads an optional string; a present value of another type is an error naming its position.
Result<std::optional<std::string>> optional_string(const toml::table& table, const char* key,
                                                   const std::string& path, const std::string& where) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return std::optional<std::string>{};
  if (const auto* s = node->as_string()) return std::optional<std::string>{s->get()};
  return config_error(path, node->source().begin, where + key + " must be a string");
}

Result<ServerConfig> parse_server(const std::string& name, const toml::node& node, const std::string& path) {
  const std::string where = "servers." + name + ".";
  const auto* table = node.as_table();
  if (table == nullptr) return config_error(path, node.source().begin, "servers." + name + " must be a table");
  ServerConfig server;
  server.name = name;

  auto host = optional_string(*table, "host", path, where);
  if (!host) return std::move(host).error();
  if (*host) server.addresses.push_back(**host);
  if (const toml::node* list = table->get("addresses")) {
    const auto* array = list->as_array();
    if (array == nullptr || array->empty()) {
      return config_error(path, list->source().begin, where + "addresses must be a non-empty array of strings");
    }
    for (const toml::node& item : *array) {
      const auto* s = item.as_string();
      if (s == nullptr) return config_error(path, item.source().begin, where + "addresses must hold strings");
      server.addresses.push_back(s->get());
    }
  }
  if (server.addresses.empty()) {
    return config_error(path, node.source().begin, where + "host (or addresses) is missing");
  }
  if (const toml::node* port = table->get("port")) {
    const auto* value = port->as_integer();
    if (value == nullptr || value->get() < 1 || value->get() > 65535) {
      return config_error(path, port->source().begin, where + "port must be an integer from 1 to 65535");
    }
    server.port = static_cast<std::uint16_t>(value->get());
  }
  auto subsystem = optional_string(*table, "subsystem", path, where);
  if (!subsystem) return std::move(subsystem).error();
  if (*subsystem) server.subsystem = **subsystem;

  auto host_key = optional_string(*table, "host_key", path, where);
  if (!host_key) return std::move(host_key).error();
  if (*host_key) {
    if ((*host_key)->rfind("SHA256:", 0) != 0) {
      return config_error(path, table->get("host_key")->source().begin,
                          where + "host_key must be a fingerprint \"SHA256:...\"");
    }
    server.host_key = **host_key;
  }
  auto acks = optional_string(*table, "acks", path, where);
  if (!acks) return std::move(acks).error();
  if (*acks) {
    const std::string& mode = **acks;
    if (mode == "auto") server.acks = AckMode::kAuto;
    else if (mode == "yes") server.acks = AckMode::kYes;
    else if (mode == "no") server.acks = AckMode::kNo;
    else return config_error(path, table->get("acks")->source().begin, where + "acks must be \"auto\", \"yes\" or \"no\"");
  }
  auto order = optional_string(*table, "order", path, where);
  if (!order) return std::move(order).error();
  if (*order && **order != "listed" && **order != "random") {
    return config_error(path, table->get("order")->source().begin, where + "order must be \"listed\" or \"random\"");
  }
  server.shuffle = *order && **order == "random";
  if (const toml::node* keys = table->get("host_keys")) {
    const auto* keys_table = keys->as_table();
    if (keys_table == nullptr) return config_error(path, keys->source().begin, where + "host_keys must be a table");
    for (const auto& [address, value] : *keys_table) {
      const auto* fingerprint = value.as_string();
      if (fingerprint == nullptr || fingerprint->get().rfind("SHA256:", 0) != 0) {
        return config_error(path, value.source().begin, where + "host_keys values must be \"SHA256:...\"");
      }
      server.node_keys[std::string(address.str())] = fingerprint->get();
    }
  }
  return server;
}

bool is_bare_key(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string toml_key(const std::string& s) { return is_bare_key(s) ? s : toml_string(s); }

std::string dotted_path(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : ".") + toml_key(part);
  return out;
}

// Makes sure an insertion at the end of `text` starts on a line of its own.
void ensure_final_newline(std::string& text) {
  if (!text.empty() && text.back() != '\n') text += '\n';
}

// Sets `key` in `table` (which starts at line `header_line`), keeping everything else.
std::string set_in_table(std::string text, const toml::table& table, toml::source_index header_line,
                         const std::string& key, const std::string& value) {
  if (const toml::node* existing = table.get(key)) {
    const std::size_t begin = offset_of(text, existing->source().begin);
    const std::size_t end = offset_of(text, existing->source().end);
    return text.replace(begin, end - begin, value);
  }
  toml::source_index last_line = header_line;
  for (const auto& [k, v] : table) {
    if (v.is_table() && !v.as_table()->is_inline()) continue;  // a sub-table has its own header
    last_line = std::max(last_line, v.source().end.line);
  }
  std::size_t at = start_of_line_after(text, last_line);
  if (at >= text.size()) {
    ensure_final_newline(text);
    at = text.size();
  }
  return text.insert(at, toml_key(key) + " = " + value + "\n");
}

}  // namespace

const ServerConfig* Config::find_server(const std::string& name) const {
  for (const ServerConfig& server : servers) {
    if (server.name == name) return &server;
  }
  return nullptr;
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20 || b == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", b);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Result<Config> parse_config(const std::string& text, const std::string& path) {
  auto parsed = parse_toml(text, path);
  if (!parsed) return std::move(parsed).error();
  const toml::table& root = *parsed;
  Config config;
  config.path = path;

  auto default_server = optional_string(root, "default_server", path, "");
  if (!default_server) return std::move(default_server).error();
  if (*default_server) config.default_server = **default_server;

  const toml::node* identity_node = root.get("identity");
  const toml::table* identity = identity_node ? identity_node->as_table() : nullptr;
  if (identity == nullptr) {
    const toml::source_position pos = identity_node ? identity_node->source().begin : toml::source_position{1, 1};
    return config_error(path, pos, "[identity] table with uuid and key is missing");
  }
  auto uuid = optional_string(*identity, "uuid", path, "identity.");
  if (!uuid) return std::move(uuid).error();
  if (!*uuid || !text::is_uuid(**uuid)) {
    const toml::node* node = identity->get("uuid");
    return config_error(path, node ? node->source().begin : identity->source().begin,
                        "identity.uuid must be a UUID like \"0b3c5a52-7f0e-4f43-9d1c-2a8f6f3e9b10\"");
  }
  config.uuid = **uuid;
  auto key = optional_string(*identity, "key", path, "identity.");
  if (!key) return std::move(key).error();
  if (!*key || (*key)->empty()) {
    return config_error(path, identity->source().begin, "identity.key (path of the private key) is missing");
  }
  config.key = **key;

  if (const toml::node* servers_node = root.get("servers")) {
    const auto* servers = servers_node->as_table();
    if (servers == nullptr) return config_error(path, servers_node->source().begin, "servers must be a table");
    for (const auto& [name, node] : *servers) {
      auto server = parse_server(std::string(name.str()), node, path);
      if (!server) return std::move(server).error();
      config.servers.push_back(std::move(*server));
    }
  }
  if (!config.default_server.empty() && config.find_server(config.default_server) == nullptr) {
    return config_error(path, root.get("default_server")->source().begin,
                        "default_server \"" + config.default_server + "\" has no [servers." +
                            config.default_server + "] table");
  }
  return config;
}

std::string new_config_text(const std::string& uuid, const std::string& key) {
  return "# game client configuration. This file is your player account: keep it private,\n"
         "# back it up (`game identity export`), and never share the key it names.\n"
         "\n"
         "[identity]\n"
         "uuid = " + toml_string(uuid) + "\n"
         "key = " + toml_string(key) + "\n";
}

Result<std::string> set_table_value(const std::string& text, const std::string& path,
                                    const std::vector<std::string>& table_path, const std::string& key,
                                    const std::string& value) {
  auto parsed = parse_toml(text, path);
  if (!parsed) return std::move(parsed).error();
  const toml::table* table = &*parsed;
  std::string dotted;
  for (const std::string& part : table_path) {
    dotted += (dotted.empty() ? "" : ".") + toml_key(part);
    const toml::node* child = table->get(part);
    if (child == nullptr) {
      std::string out = text;
      ensure_final_newline(out);
      if (!out.empty()) out += '\n';
      return out + "[" + dotted_path(table_path) + "]\n" + toml_key(key) + " = " + value + "\n";
    }
    if (!child->is_table() || child->as_table()->is_inline()) {
      return config_error(path, child->source().begin,
                          dotted + " is not a plain [table]; set " + key + " = " + value + " there yourself");
    }
    table = child->as_table();
  }
  return set_in_table(text, *table, table->source().begin.line, key, value);
}

Result<std::string> set_top_level_value(const std::string& text, const std::string& path,
                                        const std::string& key, const std::string& value) {
  auto parsed = parse_toml(text, path);
  if (!parsed) return std::move(parsed).error();
  const toml::table& root = *parsed;
  if (const toml::node* existing = root.get(key); existing != nullptr || root.empty()) {
    return set_in_table(text, root, 0, key, value);
  }
  // Top-level keys must precede the first [table]: insert after the last top-level key, or
  // right before the first table header.
  toml::source_index last_key_line = 0;
  toml::source_index first_table_line = 0;
  for (const auto& [k, v] : root) {
    if (v.is_table() && !v.as_table()->is_inline()) {
      const toml::source_index line = v.source().begin.line;
      if (first_table_line == 0 || line < first_table_line) first_table_line = line;
    } else {
      last_key_line = std::max(last_key_line, v.source().end.line);
    }
  }
  std::string out = text;
  const std::string line = toml_key(key) + " = " + value + "\n";
  if (last_key_line > 0 || first_table_line == 0) return set_in_table(out, root, 0, key, value);
  return out.insert(offset_of(out, toml::source_position{first_table_line, 1}), line + "\n");
}

}  // namespace game

namespace game {

// A key file keeps its line structure in a multi-line string; anything unusual is escaped.
std::string multiline_string(const std::string& s) {
  if (s.find_first_of("\\\"") != std::string::npos) return toml_string(s);
  return "\"\"\"\n" + s + "\"\"\"";
}

std::string identity_blob_text(const IdentityBlob& blob) {
  return "# game identity: the UUID and private key of one player. Anyone holding this text can\n"
         "# play as that player: keep it like a password. Restore it with `game identity import`.\n"
         "uuid = " + toml_string(blob.uuid) + "\n"
         "private_key = " + multiline_string(blob.private_key) + "\n";
}

Result<IdentityBlob> parse_identity_blob(const std::string& text, const std::string& origin) {
  auto parsed = parse_toml(text, origin);
  if (!parsed) return std::move(parsed).error();
  IdentityBlob blob;
  auto uuid = optional_string(*parsed, "uuid", origin, "");
  if (!uuid) return std::move(uuid).error();
  auto key = optional_string(*parsed, "private_key", origin, "");
  if (!key) return std::move(key).error();
  if (!*uuid || !text::is_uuid(**uuid) || !*key) {
    return make_error(Exit::kDataErr, origin + ": not an identity export (needs uuid and private_key)");
  }
  blob.uuid = **uuid;
  blob.private_key = **key;
  return blob;
}

}  // namespace game
