// `game batch`: requests read line by line from a file or a pipe.
//
// Line syntax (docs/batch.md): blank lines and lines starting with '#' are ignored; surrounding
// whitespace is trimmed; `score VALUE` takes one whole number; `setname NAME` takes the rest of
// the line, inner spaces included. A name that must keep leading or trailing spaces, start
// with '"', or be empty is written in double quotes, where \" and \\ are escapes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "error.h"
#include "protocol.h"
#include "session.h"

namespace game {

// The request on `line`, or nullopt for a blank or comment line. Errors are kDataErr with a
// message that does not include the location (the caller adds FILE:LINE).
Result<std::optional<protocol::Request>> parse_batch_line(std::string_view line);

// Told about each invalid input line as it is found; `what` does not include the location.
class InvalidLines {
 public:
  virtual ~InvalidLines() = default;
  virtual void on_invalid(std::uint64_t line, const std::string& what) = 0;
};

// The longest batch line, newline excluded (docs/batch.md): far above any real request (a name
// is a few hundred bytes), low enough that a stream without newlines cannot exhaust memory.
constexpr std::size_t kMaxLineBytes = 64 * 1024;

// Reads lines from a stdio stream in large blocks (a line is found with memchr and handed out
// in place, not copied byte by byte: that was a fifth of a batch's CPU), holding at most
// kBufferBytes in memory whatever the file's size: room for the longest line and as much again
// to read in one block (a larger buffer only added to a batch's peak memory).
class LineReader {
 public:
  static constexpr std::size_t kBufferBytes = 2 * kMaxLineBytes;

  explicit LineReader(std::FILE* file) : file_(file), buffer_(new char[kBufferBytes]) {}
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  // The next line without its newline (valid until the next call), nullopt at the end of the
  // file, or an error: a line over kMaxLineBytes (kDataErr, the rest of it is skipped so
  // reading can go on), or a failed read (kIoErr: never taken for the end of the file).
  // Messages have no location.
  Result<std::optional<std::string_view>> next();
  // The next lines, up to `max`, while they are `score N` exactly with at most 18 digits (nearly
  // every line of a large batch), each in one pass over its bytes: the scan of the digits finds
  // the newline too, where next() and a parser would each walk the line (they were a third of a
  // batch's CPU). Their values and line numbers into `out`; how many. Stops, with nothing of it
  // consumed, at anything else and at a line not wholly in the buffer yet: next() then reads it,
  // and the general parser judges it.
  std::size_t next_plain_scores(PlainScore* out, std::size_t max);
  // The same for the checking pass, which needs no values: every such line from here on that is
  // wholly in the buffer. How many.
  std::uint64_t skip_plain_scores();
  std::uint64_t number() const { return number_; }

 private:
  // Moves the unread bytes to the front and reads more behind them. False at the end of the file.
  Result<bool> fill();
  // Drops the rest of a line over kMaxLineBytes, through its newline (or the end of the file).
  Status skip_line();
  std::FILE* file_;
  std::unique_ptr<char[]> buffer_;
  std::size_t begin_ = 0;  // unread bytes: buffer_[begin_, end_)
  std::size_t end_ = 0;
  bool eof_ = false;
  std::uint64_t number_ = 0;
};

// A batch file (or a spooled copy of piped input), checked completely before anything is sent.
class FileBatch : public RequestSource {
 public:
  // Opens `path` ("-" for standard input). Input that is not a regular file (a pipe, a FIFO,
  // <(producer)) is spooled to an unlinked temporary file so that it can be read twice.
  static Result<std::unique_ptr<FileBatch>> open(const std::string& path, std::uint64_t from_line);
  ~FileBatch() override;

  // Reports every invalid line to `sink`. Error kDataErr if there were any.
  Status validate(InvalidLines& sink);
  Result<Next> next(Outgoing& out) override;
  std::size_t next_scores(PlainScore* out, std::size_t max) override;
  const std::string& name() const { return name_; }
  // The requests validate() found (lines that are not blank or comments): the batch's total.
  std::uint64_t requests() const { return requests_; }

 private:
  FileBatch(std::FILE* file, std::string name, std::uint64_t from_line, bool owned);
  static Result<std::unique_ptr<FileBatch>> spool(std::FILE* input, std::string name,
                                                  std::uint64_t from_line);
  Status rewind();
  std::FILE* file_;
  std::string name_;
  std::uint64_t from_line_;
  std::uint64_t requests_ = 0;
  bool owned_;
  std::unique_ptr<LineReader> reader_;
};

// Standard input read as lines arrive (--follow): each line is sent as soon as it is complete.
// An invalid line is reported to `sink` and skipped; the run goes on.
class FollowBatch : public RequestSource {
 public:
  FollowBatch(int fd, InvalidLines& sink) : fd_(fd), sink_(sink) {}
  Result<Next> next(Outgoing& out) override;
  int wait_fd() const override { return fd_; }
  std::uint64_t invalid_lines() const { return invalid_; }

 private:
  // Takes one complete line out of buf_ if there is one.
  std::optional<std::string> take_line();
  // Reports and skips a line over kMaxLineBytes; the rest of it is dropped as it arrives.
  void skip_long_line();
  int fd_;
  InvalidLines& sink_;
  std::string buf_;
  std::size_t scanned_ = 0;
  bool eof_ = false;
  bool skipping_ = false;  // inside a line too long to keep
  std::uint64_t line_ = 0;
  std::uint64_t invalid_ = 0;
};

}  // namespace game
