// Command-line numbers for the bench helpers: the whole argument must be a number in range.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bench {

// The value of `flag`, or exit 64 with a message naming the flag.
inline long number_arg(const std::string& flag, const std::string& text, long min, long max) {
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < min || value > max) {
    std::fprintf(stderr, "%s: expected a whole number from %ld to %ld, got \"%s\"\n", flag.c_str(), min, max,
                 text.c_str());
    std::exit(64);
  }
  return value;
}

}  // namespace bench
