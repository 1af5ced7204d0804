// Fuzz target: game::parse_batch_line, the syntax of `game batch` lines (docs/batch.md). Batch
// files and --follow pipes are user input, often produced by other programs.
//
// Checks beyond "no crash, no leak, no undefined behaviour":
//  - an error is a data error (exit 65) with a message;
//  - a setname parses to valid UTF-8 (the protocol's UTF8String), and writing that name back as
//    a quoted line (`setname "..."` with \" and \\ escaped) parses to the same name;
//  - a score written back in decimal parses to the same value;
//  - every request encodes (DER) to a non-empty PDU.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "batch.h"
#include "protocol.h"
#include "text.h"

namespace {

void check(bool ok, const char* what, std::string_view line) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_batch_line: %s: line %s\n", what, game::text::to_hex(line).c_str());
    std::abort();
  }
}

std::string quoted(const std::string& name) {
  std::string out = "setname \"";
  for (const char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto parsed = game::parse_batch_line(line);
  if (!parsed) {
    check(parsed.error().code == game::Exit::kDataErr, "an error that is not a data error", line);
    check(!parsed.error().message.empty(), "an error without a message", line);
    return 0;
  }
  if (!*parsed) return 0;  // blank or comment
  const game::protocol::Request& request = **parsed;
  std::string pdu;
  game::protocol::encode(request, pdu);
  check(!pdu.empty(), "a request that encodes to nothing", line);

  if (const auto* set = std::get_if<game::protocol::SetUsername>(&request)) {
    check(game::text::is_valid_utf8(set->name), "a name that is not valid UTF-8", line);
    auto again = game::parse_batch_line(quoted(set->name));
    check(again && *again, "the quoted form of a parsed name does not parse", line);
    const auto* back = std::get_if<game::protocol::SetUsername>(&**again);
    check(back != nullptr && back->name == set->name, "the quoted form of a name parses to another name",
          line);
  } else {
    const auto value = std::get<game::protocol::AddScore>(request).value;
    auto again = game::parse_batch_line("score " + std::to_string(value));
    check(again && *again, "a parsed score written back does not parse", line);
    const auto* back = std::get_if<game::protocol::AddScore>(&**again);
    check(back != nullptr && back->value == value, "a parsed score written back parses to another value",
          line);
  }
  return 0;
}
