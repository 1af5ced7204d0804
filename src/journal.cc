#include "journal.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "fs.h"
#include "text.h"

namespace game {
namespace {

constexpr auto kSaveInterval = std::chrono::seconds(1);

// The entry's name: a hash of the path, so that any path maps to one short, safe file name.
std::string entry_name(const std::string& file) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(file.data(), file.size(), digest, &length, EVP_sha256(), nullptr);
  return text::to_hex(std::string_view(reinterpret_cast<const char*>(digest), 16));
}

// One `key value` per line; the value is the rest of the line (paths may hold spaces).
std::string serialize(const Submission& s) {
  const FileIdentity& id = s.identity;
  return "stream " + s.stream + "\nfile " + s.file + "\ndevice " + std::to_string(id.device) + "\ninode " +
         std::to_string(id.inode) + "\nsize " + std::to_string(id.size) + "\nmtime_ns " +
         std::to_string(id.mtime_ns) + "\nconfig " + s.config + "\nserver " + s.server + "\nconfirmed " +
         std::to_string(s.confirmed) + "\n";
}

Result<std::uint64_t> parse_number(const std::string& value) {
  if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
    return make_error(Exit::kIoErr, "not a number: '" + text::printable(value) + "'");
  }
  errno = 0;
  const unsigned long long n = std::strtoull(value.c_str(), nullptr, 10);
  if (errno == ERANGE) return make_error(Exit::kIoErr, "number out of range");
  return static_cast<std::uint64_t>(n);
}

Status set_field(Submission& s, const std::string& key, const std::string& value) {
  std::uint64_t* number = nullptr;
  if (key == "stream") {
    s.stream = value;
  } else if (key == "file") {
    s.file = value;
  } else if (key == "config") {
    s.config = value;
  } else if (key == "server") {
    s.server = value;
  } else if (key == "device") {
    number = &s.identity.device;
  } else if (key == "inode") {
    number = &s.identity.inode;
  } else if (key == "size") {
    number = &s.identity.size;
  } else if (key == "confirmed") {
    number = &s.confirmed;
  } else if (key == "mtime_ns") {
    auto n = parse_number(value);
    if (!n) return std::move(n).error();
    s.identity.mtime_ns = static_cast<std::int64_t>(*n);
    return {};
  } else {
    return make_error(Exit::kIoErr, "unknown key '" + text::printable(key) + "'");
  }
  if (number != nullptr) {
    auto n = parse_number(value);
    if (!n) return std::move(n).error();
    *number = *n;
  }
  return {};
}

Result<Submission> parse(const std::string& path, const std::string& text) {
  Submission s;
  std::size_t start = 0;
  for (std::uint64_t line = 1; start < text.size(); ++line) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string row = text.substr(start, end - start);
    start = end + 1;
    const std::size_t space = row.find(' ');
    Status field = space == std::string::npos ? Status(make_error(Exit::kIoErr, "expected 'key value'"))
                                              : set_field(s, row.substr(0, space), row.substr(space + 1));
    if (!field) {
      return make_error(Exit::kIoErr, path + ":" + std::to_string(line) + ": " + field.error().message +
                                          " (a damaged journal entry: remove it, or use batch --new)");
    }
  }
  if (s.stream.size() != 32 || s.file.empty() || s.server.empty()) {
    return make_error(
        Exit::kIoErr,
        path + ": incomplete journal entry (a damaged journal entry: remove it, or use batch --new)");
  }
  return s;
}

}  // namespace

Result<FileIdentity> identify_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(Exit::kNoInput, "cannot open batch file " + path + ": " + std::strerror(errno));
  }
  FileIdentity id;
  id.device = static_cast<std::uint64_t>(st.st_dev);
  id.inode = static_cast<std::uint64_t>(st.st_ino);
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

Result<Journal> Journal::open() {
  auto home = fs::home_dir();
  if (!home) return std::move(home).error();
  return Journal(*home + "/.game/pending");
}

std::string Journal::entry_path(const std::string& file) const { return dir_ + "/" + entry_name(file); }

Result<std::optional<Submission>> Journal::find(const std::string& file) const {
  const std::string path = entry_path(file);
  auto text = fs::read_file(path);
  if (!text) return std::move(text).error();
  if (!*text) return std::optional<Submission>{};
  auto submission = parse(path, **text);
  if (!submission) return std::move(submission).error();
  if (submission->file != file) return std::optional<Submission>{};  // a hash collision: not ours
  return std::optional<Submission>{std::move(*submission)};
}

Status Journal::save(const Submission& submission) const {
  GAME_TRY(fs::make_private_dirs(dir_));
  return fs::write_file_atomic(entry_path(submission.file), serialize(submission), 0600);
}

Status Journal::remove(const std::string& file) const { return fs::remove_file(entry_path(file)); }

void JournalProgress::on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) {
  if (outcome == Outcome::kNotDelivered) gap_ = true;
  if (!gap_) submission_.confirmed = line;
  next_.on_outcome(line, outcome, reason);
  save_when_due();
}

void JournalProgress::on_accepted(std::uint64_t first, std::uint64_t count) {
  if (!gap_) submission_.confirmed = first + count - 1;
  next_.on_accepted(first, count);
  save_when_due();
}

void JournalProgress::save_when_due() {
  if (!gap_ && !failed_ && std::chrono::steady_clock::now() - last_save_ >= kSaveInterval) {
    if (Status saved = save(); !saved) {
      failed_ = true;
      stop_.stop(std::move(saved).error());
    }
  }
}

Status JournalProgress::start(std::string config, std::string server) {
  submission_.config = std::move(config);
  submission_.server = std::move(server);
  return save();
}

Status JournalProgress::save() {
  last_save_ = std::chrono::steady_clock::now();
  return journal_.save(submission_);
}

}  // namespace game
