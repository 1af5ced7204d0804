// Fuzz target: game::protocol::ResponseReader, which frames and decodes the server's byte stream
// (untrusted; it may arrive split or coalesced anywhere).
//
// The input is the stream. It is fed three ways: all at once, one byte at a time, and in chunks
// of 1 to 64 bytes chosen by a generator seeded from the input. After each feed the reader is
// drained like the session does (next() until "need more" or an error; an error ends the
// stream). All three must agree: the same Responses, the same kind of error (or none) after the
// same number of Responses, and the same "partial PDU buffered" state at the end. The error
// message itself may differ, since it quotes the bytes available when the error was seen.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol.h"

namespace {

struct Outcome {
  std::vector<game::protocol::Response> responses;
  bool failed = false;
  game::Exit error = game::Exit::kOk;
  bool empty = true;
};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_response: %s\n", what);
    std::abort();
  }
}

// Feeds `stream` in the chunks `next_size` returns and drains the reader after each.
template <class NextSize>
Outcome run(const std::string& stream, NextSize next_size) {
  game::protocol::ResponseReader reader;
  Outcome out;
  for (std::size_t at = 0; at < stream.size() && !out.failed;) {
    const std::size_t n = std::min(next_size(), stream.size() - at);
    reader.feed(stream.data() + at, n);
    at += n;
    for (;;) {
      auto next = reader.next();
      if (!next) {
        out.failed = true;
        out.error = next.error().code;
        check(!next.error().message.empty(), "an error without a message");
        break;
      }
      if (!*next) break;
      const auto& response = **next;
      check(response.reason.size() < game::protocol::ResponseReader::kMaxResponseSize,
            "a reason longer than the response size limit");
      out.responses.push_back(response);
    }
  }
  out.empty = reader.empty();
  return out;
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.failed != b.failed || a.error != b.error || a.responses.size() != b.responses.size()) return false;
  if (!a.failed && a.empty != b.empty) return false;
  for (std::size_t i = 0; i < a.responses.size(); ++i) {
    if (a.responses[i].accepted != b.responses[i].accepted ||
        a.responses[i].reason != b.responses[i].reason) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string stream(reinterpret_cast<const char*>(data), size);

  const Outcome whole = run(stream, [&] { return stream.size(); });
  if (whole.failed) check(whole.error == game::Exit::kProtocol, "an error that is not a protocol error");

  const Outcome bytes = run(stream, [] { return std::size_t{1}; });
  check(same(whole, bytes), "fed byte by byte, the stream decodes differently than fed at once");

  std::uint32_t state = 2166136261u;
  for (const std::uint8_t b : stream) state = (state ^ b) * 16777619u;
  const Outcome chunks = run(stream, [&] {
    state = state * 1103515245u + 12345u;
    return std::size_t{1} + (state >> 16) % 64;
  });
  check(same(whole, chunks), "fed in random chunks, the stream decodes differently than fed at once");
  return 0;
}
