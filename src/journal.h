// The journal of unfinished submissions: one small private file per batch file under
// ~/.game/pending/, written atomically when a submission starts, about once a second while it
// runs and when it stops, and removed when every line has its result. It lets
// `game batch --resume FILE` continue after Ctrl-C, a kill -9 of the client, a reboot or a
// server crash, and stops `game batch FILE` from silently starting a second submission.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "error.h"
#include "session.h"

namespace game {

// What identifies the contents of a batch file without reading it: a file edited, replaced or
// restored from a backup since the submission started differs in at least one field.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

Result<FileIdentity> identify_file(const std::string& path);

struct Submission {
  std::string stream;  // 32 hex digits: the protocol 2 stream naming this unit of work
  std::string file;    // absolute path of the batch file
  FileIdentity identity;
  std::string config;  // config path the submission used
  std::string server;  // server name (config entry or HOST:PORT)
  // Every line up to and including this one has its result from the server (0: none yet).
  std::uint64_t confirmed = 0;
};

class Journal {
 public:
  // The journal under $HOME/.game/pending (created 0700 on first save).
  static Result<Journal> open();
  // The unfinished submission of `file` (an absolute path), if there is one.
  Result<std::optional<Submission>> find(const std::string& file) const;
  Status save(const Submission& submission) const;
  Status remove(const std::string& file) const;
  std::string entry_path(const std::string& file) const;

 private:
  explicit Journal(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Follows a run's results and keeps the journal entry's `confirmed` line current: results arrive
// in line order, so it is the last line with a result before the first one without. Writes are
// at most once a second (an atomic write costs an fsync); a failed write stops the run.
class JournalProgress : public Observer {
 public:
  JournalProgress(const Journal& journal, Submission submission, Observer& next, StopRequests& stop)
      : journal_(journal), submission_(std::move(submission)), next_(next), stop_(stop) {}
  void on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) override;
  void on_accepted(std::uint64_t first, std::uint64_t count) override;
  // Records where the run goes and writes the entry: before connecting.
  Status start(std::string config, std::string server);
  // Writes the entry now (at the end of a run).
  Status save();
  const Submission& submission() const { return submission_; }

 private:
  // save() if the last one is kSaveInterval old; a failure stops the run.
  void save_when_due();
  const Journal& journal_;
  Submission submission_;
  Observer& next_;
  StopRequests& stop_;
  bool gap_ = false;  // a line without a result was seen: nothing after it is confirmed
  std::chrono::steady_clock::time_point last_save_ = std::chrono::steady_clock::now();
  bool failed_ = false;
};

}  // namespace game
