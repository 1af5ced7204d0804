// Fuzz target: game::protocol::ResponseReader and ServerMessageReader, which frame and decode the
// server's byte stream in protocol 1 and 2 (untrusted; it may arrive split or coalesced anywhere).
//
// The input is the stream. It is fed four ways: all at once, one byte at a time, in chunks of 1
// to 64 bytes chosen by a generator seeded from the input, and in those chunks again drained
// like the session does, through the shortcuts for the common messages first (take_accepted: in
// protocol 2, for the seq after the last result). After each feed the reader is drained (next() until "need
// more" or an error; an error ends the stream). All four must agree: the same Responses, the same kind of
// error (or none) after the same number of Responses, and the same "partial PDU buffered" state at the end.
// The error message itself may differ, since it quotes the bytes available when the error was seen. Both
// readers get every input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol.h"

namespace {

// One decoded message, as comparable text.
std::string text_of(const game::protocol::Response& r) { return (r.accepted ? "a" : "r") + r.reason; }
std::string text_of(const game::protocol::ServerMessage& m) {
  if (const auto* opened = std::get_if<game::protocol::Opened>(&m))
    return "o" + std::to_string(opened->last_seq);
  const auto& result = std::get<game::protocol::ResultMessage>(m);
  std::string out =
      "r" + std::to_string(result.seq) + ":" + std::to_string(static_cast<int>(result.kind)) + result.reason;
  for (const auto& key : result.keys) out += "|" + key.key + "|" + key.label + (key.current ? "1" : "0");
  return out;
}

struct Outcome {
  std::vector<std::string> responses;
  bool failed = false;
  game::Exit error = game::Exit::kOk;
  bool empty = true;
  std::uint64_t due = 1;  // protocol 2: the seq after the last result, which the shortcut expects
};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_response: %s\n", what);
    std::abort();
  }
}

// After a result read by next(), the shortcut expects the seq after it.
void note_due(const game::protocol::Response&, Outcome&) {}
void note_due(const game::protocol::ServerMessage& m, Outcome& out) {
  if (const auto* result = std::get_if<game::protocol::ResultMessage>(&m)) out.due = result->seq + 1;
}

// The session's shortcuts: true if one took a message (recorded like next() would have).
bool shortcut(game::protocol::ResponseReader& reader, Outcome& out) {
  const std::uint64_t accepted = reader.take_accepted(3);  // a few at a time: the bound is tested too
  for (std::uint64_t i = 0; i < accepted; ++i)
    out.responses.push_back(text_of(game::protocol::Response{true, {}}));
  return accepted > 0;
}
bool shortcut(game::protocol::ServerMessageReader& reader, Outcome& out) {
  if (!reader.take_accepted(out.due)) return false;
  game::protocol::ResultMessage result;
  result.seq = out.due++;
  result.kind = game::protocol::ResultMessage::Kind::kAccepted;
  out.responses.push_back(text_of(game::protocol::ServerMessage{result}));
  return true;
}

// Feeds `stream` in the chunks `next_size` returns and drains the reader after each.
template <class Reader, class NextSize>
Outcome run(const std::string& stream, NextSize next_size, bool shortcuts = false) {
  Reader reader;
  Outcome out;
  for (std::size_t at = 0; at < stream.size() && !out.failed;) {
    const std::size_t n = std::min(next_size(), stream.size() - at);
    reader.feed(stream.data() + at, n);
    at += n;
    for (;;) {
      if (shortcuts && shortcut(reader, out)) continue;
      auto next = reader.next();
      if (!next) {
        out.failed = true;
        out.error = next.error().code;
        check(!next.error().message.empty(), "an error without a message");
        break;
      }
      if (!*next) break;
      note_due(**next, out);
      out.responses.push_back(text_of(**next));
      check(out.responses.back().size() < 2 * game::protocol::BerFramer::kMaxMessageSize,
            "a message larger than the size limit");
    }
  }
  out.empty = reader.empty();
  return out;
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.failed != b.failed || a.error != b.error || a.responses.size() != b.responses.size()) return false;
  if (!a.failed && a.empty != b.empty) return false;
  return a.responses == b.responses;
}

template <class Reader>
void check_reader(const std::string& stream) {
  const Outcome whole = run<Reader>(stream, [&] { return stream.size(); });
  if (whole.failed) check(whole.error == game::Exit::kProtocol, "an error that is not a protocol error");

  const Outcome bytes = run<Reader>(stream, [] { return std::size_t{1}; });
  check(same(whole, bytes), "fed byte by byte, the stream decodes differently than fed at once");

  std::uint32_t seed = 2166136261u;
  for (const std::uint8_t b : stream) seed = (seed ^ b) * 16777619u;
  const auto chunk_sizes = [state = seed]() mutable {
    state = state * 1103515245u + 12345u;
    return std::size_t{1} + (state >> 16) % 64;
  };
  const Outcome chunks = run<Reader>(stream, chunk_sizes);
  check(same(whole, chunks), "fed in random chunks, the stream decodes differently than fed at once");
  const Outcome fast = run<Reader>(stream, chunk_sizes, true);
  check(same(whole, fast), "read through the shortcuts, the stream decodes differently than through next()");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string stream(reinterpret_cast<const char*>(data), size);
  check_reader<game::protocol::ResponseReader>(stream);
  check_reader<game::protocol::ServerMessageReader>(stream);
  return 0;
}
