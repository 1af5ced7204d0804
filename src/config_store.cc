#include "config_store.h"

#include <chrono>
#include <cstdio>

#include "fs.h"
#include "hostkey.h"

namespace game {
namespace {

// Sets `key = value` in the table at `table`, for use in a chain of edits.
Status set_value(std::string& text, const std::string& path, const std::vector<std::string>& table,
                 const std::string& key, const std::string& value) {
  auto edited = set_table_value(text, path, table, key, value);
  if (!edited) return std::move(edited).error();
  text = std::move(*edited);
  return {};
}

// Appends [servers.NAME] tables for the servers `text` does not have yet.
Status add_missing_servers(std::string& text, const std::string& path,
                           const std::vector<ServerConfig>& servers) {
  auto current = parse_config(text, path);
  if (!current) return std::move(current).error();
  for (const ServerConfig& server : servers) {
    if (current->find_server(server.name) != nullptr) continue;
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += "\n" + server_table_text(server);
  }
  if (current->default_server.empty() && !servers.empty()) {
    auto edited = set_top_level_value(text, path, "default_server", toml_string(servers.front().name));
    if (!edited) return std::move(edited).error();
    text = std::move(*edited);
  }
  return {};
}

}  // namespace

std::string lock_path(const std::string& config) {
  return fs::parent_dir(config) + "/.game/" + fs::base_name(config) + ".lock";
}

Result<Config> update_config(const std::string& path, const ConfigEdit& edit,
                             std::chrono::milliseconds lock_wait) {
  auto lock = fs::FileLock::acquire(lock_path(path), lock_wait);
  if (!lock) return std::move(lock).error();
  auto text = fs::read_file(path, kMaxConfigBytes);
  if (!text) return std::move(text).error();
  if (!*text) return make_error(Exit::kConfig, path + " disappeared while updating it");
  auto edited = edit(**text);
  if (!edited) return std::move(edited).error();
  auto config = parse_config(*edited, path);
  if (!config) {
    return make_error(Exit::kConfig, "refusing to write " + path + ": the update would break it (" +
                                         config.error().message + ")");
  }
  if (*edited != **text) GAME_TRY(fs::write_file_atomic(path, *edited, 0600));
  return config;
}

Status create_config(const std::string& path, const std::string& uuid, const std::string& key,
                     const std::vector<ServerConfig>& servers) {
  std::string text = new_config_text(uuid, key);
  GAME_TRY(add_missing_servers(text, path, servers));
  return fs::write_file_atomic(path, text, 0600);
}

Status record_host_key(const std::string& path, const ServerConfig& server, const std::string& endpoint,
                       const std::string& fingerprint, HostKeyRecord how, bool shared,
                       std::chrono::milliseconds lock_wait) {
  const ConfigEdit edit = [&](const std::string& text) -> Result<std::string> {
    auto current = parse_config(text, path);
    if (!current) return std::move(current).error();
    std::string out = text;
    const ServerConfig* known = current->find_server(server.name);
    if (how == HostKeyRecord::kFirstUse && known != nullptr) {
      const std::string recorded = expected_host_key(*known, endpoint);
      if (!recorded.empty()) {
        if (recorded != fingerprint)
          return host_key_mismatch(recorded, fingerprint, path, endpoint, server.name);
        return out;
      }
    }
    if (known == nullptr) {
      GAME_TRY(set_value(out, path, {"servers", server.name}, "host", toml_string(server.addresses.front())));
      GAME_TRY(set_value(out, path, {"servers", server.name}, "port", std::to_string(server.port)));
    }
    if (shared || server.addresses.size() == 1) {
      GAME_TRY(set_value(out, path, {"servers", server.name}, "host_key", toml_string(fingerprint)));
    } else {
      GAME_TRY(
          set_value(out, path, {"servers", server.name, "host_keys"}, endpoint, toml_string(fingerprint)));
    }
    if (current->default_server.empty()) {
      auto with_default = set_top_level_value(out, path, "default_server", toml_string(server.name));
      if (!with_default) return std::move(with_default).error();
      out = std::move(*with_default);
    }
    return out;
  };
  auto updated = update_config(path, edit, lock_wait);
  if (!updated) return std::move(updated).error();
  return {};
}

Result<std::string> with_imported_identity(const std::string& text, const std::string& path,
                                           const std::string& uuid, const std::string& key,
                                           const std::vector<ServerConfig>& servers) {
  std::string out = text;
  GAME_TRY(set_value(out, path, {"identity"}, "uuid", toml_string(uuid)));
  GAME_TRY(set_value(out, path, {"identity"}, "key", toml_string(key)));
  GAME_TRY(add_missing_servers(out, path, servers));
  return out;
}

Status record_protocol(const std::string& path, const std::string& server_name, int protocol,
                       std::int64_t now, std::chrono::milliseconds lock_wait) {
  const auto edit = [&](const std::string& text) -> Result<std::string> {
    auto current = parse_config(text, path);
    if (!current) return std::move(current).error();
    if (current->find_server(server_name) == nullptr) return text;
    // By hand: glibc's gmtime_r and strftime call tzset(), which reads /etc/localtime for a UTC
    // time that never needs it.
    using namespace std::chrono;
    const sys_seconds at{seconds{now}};
    const auto day = floor<days>(at);
    const year_month_day date{day};
    const hh_mm_ss<seconds> time{at - day};
    char when[64];  // room for any value the format can produce: -Wformat-truncation cannot bound them
    std::snprintf(when, sizeof when, "%04d-%02u-%02uT%02ld:%02ld:%02lldZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<long>(time.hours().count()), static_cast<long>(time.minutes().count()),
                  static_cast<long long>(time.seconds().count()));
    auto edited = set_table_value(text, path, {"servers", server_name}, "protocol", std::to_string(protocol));
    if (!edited) return edited;
    return set_table_value(*edited, path, {"servers", server_name}, "protocol_checked", when);
  };
  auto updated = update_config(path, edit, lock_wait);
  if (!updated) return std::move(updated).error();
  return {};
}

}  // namespace game
