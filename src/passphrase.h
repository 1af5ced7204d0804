// Asking for a key's passphrase on the controlling terminal, as OpenSSH's readpassphrase(3)
// does: echo off before the prompt, and restored on every way out, including SIGINT, SIGTERM,
// SIGHUP and job-control stops (the signal is then delivered again once the terminal is back).
#pragma once

#include <optional>
#include <string>

namespace game {

// The line typed after `prompt`, without its newline; nullopt when there is no terminal
// (/dev/tty cannot be opened) or it was closed before a line was typed.
std::optional<std::string> read_passphrase(const std::string& prompt);

}  // namespace game
