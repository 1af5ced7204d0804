#include "batch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "text.h"

namespace game {
namespace {

// The contents of a double-quoted name, with \" and \\ unescaped.
Result<std::string> unquote(std::string_view quoted) {
  if (quoted.size() < 2 || quoted.back() != '"') {
    return make_error(Exit::kDataErr, "unterminated quoted name (missing closing '\"')");
  }
  std::string out;
  for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
    char c = quoted[i];
    if (c == '\\') {
      if (i + 2 >= quoted.size() || (quoted[i + 1] != '"' && quoted[i + 1] != '\\')) {
        return make_error(Exit::kDataErr, "in a quoted name only \\\" and \\\\ are escapes");
      }
      c = quoted[++i];
    } else if (c == '"') {
      return make_error(Exit::kDataErr, "unescaped '\"' inside a quoted name");
    }
    out += c;
  }
  return out;
}

// Up to 18 decimal digits at `p` (fewer than `end - p` bytes may be read beyond them, never
// past `end`): how many, and their value; nullopt for none, or for more than 18 (the caller's
// general path then checks the range). Eight bytes are looked at as one word where they are in
// the buffer: a batch line's number is found and converted in a dozen instructions instead of
// eight per digit. Without kValue the digits are only counted (the checking pass). Always
// inlined: a call returned the optional through memory, 15 instructions of a batch's request.
struct DigitRun {
  std::size_t digits;
  std::uint64_t value;
};
template <bool kValue>
[[gnu::always_inline]] inline std::optional<DigitRun> digit_run(const char* p, const char* end) {
  constexpr std::size_t kMaxDigits = 18;  // below 10^18: the sum cannot overflow
  std::size_t n = 0;
  std::uint64_t value = 0;
  if constexpr (std::endian::native == std::endian::little) {
    if (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, sizeof word);
      // Per byte, the top bit is set if it is not an ASCII digit: at or above 0x80, below 0x30 or
      // above 0x39 (each test on the low seven bits, so no carry crosses into the next byte).
      constexpr std::uint64_t kOnes = 0x0101010101010101, kTop = 0x8080808080808080;
      const std::uint64_t low7 = word & ~kTop;
      const std::uint64_t at_least_0 = (low7 + kOnes * (0x80 - '0')) & kTop;
      const std::uint64_t above_9 = (low7 + kOnes * (0x80 - '9' - 1)) & kTop;
      const std::uint64_t not_digit = (word & kTop) | (~at_least_0 & kTop) | above_9;
      n = not_digit == 0 ? 8 : static_cast<std::size_t>(std::countr_zero(not_digit)) / 8;
      if (kValue && n > 0) {
        // The n digits moved to the top bytes (zeros before them are leading zeros), then pairs,
        // quads and octets of digits combined (the "eight digits" conversion of fast_float).
        std::uint64_t v = (word - kOnes * '0') << (8 * (8 - n));
        v = (v * 10 + (v >> 8)) & 0x00ff00ff00ff00ff;
        v = (v * 100 + (v >> 16)) & 0x0000ffff0000ffff;
        value = (v * 10000 + (v >> 32)) & 0xffffffff;
      }
      if (n < 8) return n == 0 ? std::nullopt : std::optional<DigitRun>({n, value});
    }
  }
  for (; p + n != end && n <= kMaxDigits; ++n) {
    const auto digit = static_cast<unsigned char>(p[n] - '0');
    if (digit > 9) break;
    if (kValue) value = value * 10 + digit;
  }
  if (n == 0 || n > kMaxDigits) return std::nullopt;
  return DigitRun{n, value};
}

// The value of a plain decimal (an optional '-', then digits) as from_chars reads it; nullopt
// for anything else. Up to 18 digits cannot overflow and are summed directly (from_chars was a
// tenth of a batch's CPU); longer ones go to from_chars, which checks the range.
std::optional<std::int64_t> plain_decimal(const char* first, const char* last) {
  const bool negative = first != last && *first == '-';
  const char* digits = first + (negative ? 1 : 0);
  if (digits == last || last - digits > 18) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(first, last, value);
    if (first == last || ec != std::errc{} || end != last) return std::nullopt;
    return value;
  }
  const auto number = digit_run<true>(digits, last);
  if (!number || digits + number->digits != last) return std::nullopt;
  const auto magnitude = static_cast<std::int64_t>(number->value);
  return negative ? -magnitude : magnitude;
}

// Every plain score line starts so; read by plain_score() and LineReader's shortcut.
constexpr std::string_view kScorePrefix = "score ";

// `score N` exactly, nearly every line of a large batch: read straight off the line, without
// the general path's trimming and error placeholders (it was half of a batch's CPU per line,
// docs/PERFORMANCE.md). Anything else goes the general way, which also words the errors.
std::optional<std::int64_t> plain_score(std::string_view line) {
  if (line.size() <= kScorePrefix.size() || line.substr(0, kScorePrefix.size()) != kScorePrefix)
    return std::nullopt;
  return plain_decimal(line.data() + kScorePrefix.size(), line.data() + line.size());
}

// `out` becomes addScore { value }, reusing what it holds when it is one already.
void set_add_score(Outgoing& out, std::int64_t value) {
  if (auto* request = std::get_if<protocol::Request>(&out.request)) {
    if (auto* score = std::get_if<protocol::AddScore>(request)) {
      score->value = value;
      return;
    }
  }
  out.request = protocol::Request{protocol::AddScore{value}};
}

}  // namespace

Result<std::optional<protocol::Request>> parse_batch_line(std::string_view line) {
  if (const auto value = plain_score(line))
    return std::optional<protocol::Request>{protocol::AddScore{*value}};
  line = text::trim(line);
  if (line.empty() || line.front() == '#') return std::optional<protocol::Request>{};
  const std::size_t space = line.find_first_of(" \t");
  const std::string_view command = line.substr(0, space);
  const std::string_view argument =
      space == std::string_view::npos ? std::string_view{} : text::trim(line.substr(space));
  Result<protocol::Request> request = make_error(Exit::kDataErr, "");
  if (command == "score") {
    if (argument.empty()) return make_error(Exit::kDataErr, "score needs a value, e.g. 'score 789'");
    if (argument.find_first_of(" \t") != std::string_view::npos) {
      return make_error(Exit::kDataErr, "score takes exactly one value");
    }
    request = protocol::make_add_score(argument);
  } else if (command == "setname") {
    if (argument.empty())
      return make_error(Exit::kDataErr, "setname needs a name (write \"\" for an empty one)");
    if (argument.front() == '"') {
      auto name = unquote(argument);
      if (!name) return std::move(name).error();
      request = protocol::make_set_username(*name);
    } else {
      request = protocol::make_set_username(argument);
    }
  } else {
    return make_error(Exit::kDataErr, "unknown command '" + text::printable(command) +
                                          "' (expected 'setname NAME' or 'score VALUE')");
  }
  if (!request) return std::move(request).error();
  return std::optional<protocol::Request>{std::move(*request)};
}

Result<std::optional<std::string_view>> LineReader::next() {
  using Line = std::optional<std::string_view>;
  for (;;) {
    char* const start = buffer_.get() + begin_;
    const std::size_t unread = end_ - begin_;
    if (const auto* newline = static_cast<char*>(std::memchr(start, '\n', unread))) {
      const auto size = static_cast<std::size_t>(newline - start);
      begin_ += size + 1;
      ++number_;
      if (size > kMaxLineBytes) break;
      return Line{std::string_view(start, size)};
    }
    if (unread > kMaxLineBytes) {
      GAME_TRY(skip_line());
      ++number_;
      break;
    }
    if (eof_) {
      if (unread == 0) return Line{};
      begin_ = end_;  // a last line without a newline
      ++number_;
      return Line{std::string_view(start, unread)};
    }
    auto more = fill();
    if (!more) return std::move(more).error();
  }
  return make_error(Exit::kDataErr, "line longer than " + std::to_string(kMaxLineBytes) + " bytes");
}

namespace {

// The end of the `score N` line at `line` (past its newline) if it is one with at most 18 digits,
// wholly before `end`, and its value in `value` if kValue; nullptr for anything else.
template <bool kValue>
[[gnu::always_inline]] inline const char* plain_score_line(const char* line, const char* end,
                                                           std::int64_t* value) {
  if (end - line < static_cast<std::ptrdiff_t>(kScorePrefix.size()) + 2 ||
      std::memcmp(line, kScorePrefix.data(), kScorePrefix.size()) != 0)
    return nullptr;
  const bool negative = line[kScorePrefix.size()] == '-';
  const char* const digits = line + kScorePrefix.size() + (negative ? 1 : 0);
  const auto number = digit_run<kValue>(digits, end);
  if (!number) return nullptr;
  const char* const after = digits + number->digits;
  if (after == end || *after != '\n') return nullptr;
  if (kValue) {
    const auto magnitude = static_cast<std::int64_t>(number->value);
    *value = negative ? -magnitude : magnitude;
  }
  return after + 1;
}

}  // namespace

std::uint64_t LineReader::skip_plain_scores() {
  const char* const buffer = buffer_.get();
  const char* const end = buffer + end_;
  const char* line = buffer + begin_;
  std::uint64_t lines = 0;
  while (const char* next = plain_score_line<false>(line, end, nullptr)) {
    line = next;
    ++lines;
  }
  begin_ = static_cast<std::size_t>(line - buffer);
  number_ += lines;
  return lines;
}

std::size_t LineReader::next_plain_scores(PlainScore* out, std::size_t max) {
  const char* const buffer = buffer_.get();
  const char* const end = buffer + end_;
  const char* line = buffer + begin_;
  std::size_t n = 0;
  std::int64_t value = 0;
  for (; n < max; ++n) {
    const char* const next = plain_score_line<true>(line, end, &value);
    if (next == nullptr) break;
    out[n] = {number_ + n + 1, value};
    line = next;
  }
  begin_ = static_cast<std::size_t>(line - buffer);
  number_ += n;
  return n;
}

Result<bool> LineReader::fill() {
  std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
  const std::size_t n = std::fread(buffer_.get() + end_, 1, kBufferBytes - end_, file_);
  end_ += n;
  if (n == 0) {
    if (std::ferror(file_))
      return make_error(Exit::kIoErr, std::string("read failed: ") + std::strerror(errno));
    eof_ = true;
  }
  return n > 0;
}

Status LineReader::skip_line() {
  for (;;) {
    const char* start = buffer_.get() + begin_;
    if (const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_))) {
      begin_ += static_cast<std::size_t>(newline - start) + 1;
      return {};
    }
    begin_ = end_;
    auto more = fill();
    if (!more) return std::move(more).error();
    if (!*more) return {};
  }
}

FileBatch::FileBatch(std::FILE* file, std::string name, std::uint64_t from_line, bool owned)
    : file_(file), name_(std::move(name)), from_line_(from_line), owned_(owned) {}

FileBatch::~FileBatch() {
  if (owned_) std::fclose(file_);
}

Result<std::unique_ptr<FileBatch>> FileBatch::open(const std::string& path, std::uint64_t from_line) {
  if (path == "-") {
    struct stat st;
    if (::fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
      return std::unique_ptr<FileBatch>(new FileBatch(stdin, "stdin", from_line, false));
    }
    return spool(stdin, "stdin", from_line);
  }
  std::FILE* file = std::fopen(path.c_str(), "re");
  if (file == nullptr) {
    return make_error(Exit::kNoInput, "cannot open batch file " + path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(::fileno(file), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::fclose(file);
    return make_error(Exit::kNoInput, "cannot open batch file " + path + ": Is a directory");
  }
  if (::fstat(::fileno(file), &st) == 0 && !S_ISREG(st.st_mode)) {
    // A FIFO or <(producer) can be read once only: keep a copy to validate and then send.
    auto spooled = spool(file, path, from_line);
    std::fclose(file);
    return spooled;
  }
  return std::unique_ptr<FileBatch>(new FileBatch(file, path, from_line, true));
}

Result<std::unique_ptr<FileBatch>> FileBatch::spool(std::FILE* input, std::string name,
                                                    std::uint64_t from_line) {
  std::FILE* copy = std::tmpfile();
  if (copy == nullptr) {
    return make_error(Exit::kIoErr,
                      "cannot create a temporary file for " + name + ": " + std::strerror(errno));
  }
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, input)) > 0;) {
    if (std::fwrite(buf, 1, n, copy) != n || std::fflush(copy) != 0) {
      const int saved = errno;
      std::fclose(copy);
      return make_error(Exit::kIoErr,
                        "cannot copy " + name + " to a temporary file: " + std::strerror(saved));
    }
    // A terminal's Ctrl-D ends one read(), not the terminal: reading on would wait for a second.
    if (std::feof(stdin)) break;
  }
  if (std::ferror(input)) {
    const int saved = errno;
    std::fclose(copy);
    return make_error(Exit::kIoErr, "cannot read " + name + ": " + std::strerror(saved));
  }
  return std::unique_ptr<FileBatch>(new FileBatch(copy, std::move(name), from_line, true));
}

Status FileBatch::rewind() {
  if (std::fseek(file_, 0, SEEK_SET) != 0) {
    return make_error(Exit::kIoErr, "cannot re-read " + name_ + ": " + std::strerror(errno));
  }
  reader_ = std::make_unique<LineReader>(file_);
  return {};
}

Status FileBatch::validate(InvalidLines& sink) {
  GAME_TRY(rewind());
  std::uint64_t bad = 0;
  for (;;) {
    const std::uint64_t before = reader_->number();
    if (const std::uint64_t lines = reader_->skip_plain_scores(); lines > 0) {
      // Lines before + 1 to before + lines: those from --from-line on are requests.
      const std::uint64_t first = std::max(before + 1, from_line_);
      if (before + lines >= first) requests_ += before + lines - first + 1;
      continue;
    }
    auto line = reader_->next();
    if (!line && line.error().code == Exit::kIoErr) {
      return make_error(Exit::kIoErr,
                        name_ + ":" + std::to_string(reader_->number() + 1) + ": " + line.error().message);
    }
    if (line && !*line) break;
    if (reader_->number() < from_line_) continue;
    if (line && plain_score(**line)) {
      ++requests_;
      continue;
    }
    auto parsed = line ? parse_batch_line(**line) : Result<std::optional<protocol::Request>>(line.error());
    if (parsed && *parsed) ++requests_;
    if (!parsed) {
      ++bad;
      sink.on_invalid(reader_->number(), parsed.error().message);
    }
  }
  const std::uint64_t lines = reader_->number();
  GAME_TRY(rewind());
  if (bad > 0) {
    return make_error(Exit::kDataErr, name_ + ": " + std::to_string(bad) + " invalid line" +
                                          (bad == 1 ? "" : "s") + "; nothing was sent");
  }
  if (from_line_ > lines) {
    return make_error(Exit::kUsage, "--from-line " + std::to_string(from_line_) + " is past the end of " +
                                        name_ + ", which has " + std::to_string(lines) + " line" +
                                        (lines == 1 ? "" : "s") + "; nothing was sent");
  }
  return {};
}

Result<RequestSource::Next> FileBatch::next(Outgoing& out) {
  for (;;) {
    auto line = reader_->next();
    if (line && !*line) return Next::kEnd;
    if (reader_->number() < from_line_ && line) continue;
    if (line) {
      if (const auto value = plain_score(**line)) {
        set_add_score(out, *value);
        out.line = reader_->number();
        return Next::kReady;
      }
    }
    auto parsed = line ? parse_batch_line(**line) : Result<std::optional<protocol::Request>>(line.error());
    // validate() saw the same bytes; a failure now means the file changed under us.
    if (!parsed) {
      return make_error(parsed.error().code, name_ + ":" + std::to_string(reader_->number()) + ": " +
                                                 parsed.error().message + " (file changed while sending?)");
    }
    if (!*parsed) continue;
    out.request = std::move(**parsed);
    out.line = reader_->number();
    return Next::kReady;
  }
}

std::size_t FileBatch::next_scores(PlainScore* out, std::size_t max) {
  if (reader_->number() + 1 < from_line_) return 0;  // next() skips the lines before --from-line
  return reader_->next_plain_scores(out, max);
}

void FollowBatch::skip_long_line() {
  ++line_;
  ++invalid_;
  sink_.on_invalid(line_, "line longer than " + std::to_string(kMaxLineBytes) + " bytes (skipped)");
  buf_.clear();
  scanned_ = 0;
  skipping_ = true;
}

std::optional<std::string> FollowBatch::take_line() {
  const std::size_t newline = buf_.find('\n', scanned_);
  if (newline == std::string::npos) {
    scanned_ = buf_.size();
    if (!eof_ || buf_.empty()) return std::nullopt;
    std::string last = std::move(buf_);  // a final line without a newline
    buf_.clear();
    scanned_ = 0;
    return last;
  }
  std::string line = buf_.substr(0, newline);
  buf_.erase(0, newline + 1);
  scanned_ = 0;
  return line;
}

Result<RequestSource::Next> FollowBatch::next(Outgoing& out) {
  for (;;) {
    while (auto line = take_line()) {
      ++line_;
      auto parsed = line->size() > kMaxLineBytes
                        ? Result<std::optional<protocol::Request>>(make_error(
                              Exit::kDataErr, "line longer than " + std::to_string(kMaxLineBytes) + " bytes"))
                        : parse_batch_line(*line);
      if (!parsed) {
        ++invalid_;
        sink_.on_invalid(line_, parsed.error().message + " (skipped)");
        continue;
      }
      if (!*parsed) continue;
      out.request = std::move(**parsed);
      out.line = line_;
      return Next::kReady;
    }
    if (eof_) return Next::kEnd;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) return Next::kWait;
    char chunk[65536];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return Next::kWait;
    if (n < 0)
      return make_error(Exit::kIoErr, std::string("cannot read standard input: ") + std::strerror(errno));
    if (n == 0) eof_ = true;
    std::string_view data(chunk, static_cast<std::size_t>(n));
    if (skipping_) {
      const std::size_t newline = data.find('\n');
      if (newline == std::string_view::npos) continue;
      data.remove_prefix(newline + 1);
      skipping_ = false;
    }
    buf_.append(data);
    // A line over the limit is reported as soon as it is known to be one, not when it ends.
    if (buf_.find('\n', scanned_) == std::string::npos && buf_.size() > kMaxLineBytes) skip_long_line();
  }
}

}  // namespace game
