#include "suggest.h"

#include <algorithm>
#include <numeric>

namespace game {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Three rows of the dynamic programme: the transposition looks two rows back.
  std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  std::iota(previous.begin(), previous.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    before.swap(previous);
    previous.swap(current);
  }
  return previous[b.size()];
}

}  // namespace

std::vector<std::string> close_matches(std::string_view word, const std::vector<std::string>& candidates) {
  // Up to two edits, and fewer than the word has letters: "x" is not a typo of "ls".
  const std::size_t limit = std::min<std::size_t>(2, word.size() > 1 ? word.size() - 1 : 0);
  std::size_t best = limit + 1;
  std::vector<std::string> matches;
  for (const std::string& candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate);
    if (distance == 0 || distance > limit || distance > best) continue;
    if (distance < best) matches.clear();
    best = distance;
    matches.push_back(candidate);
  }
  return matches;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::vector<std::string> matches = close_matches(word, candidates);
  if (matches.empty()) return {};
  std::string text = "; did you mean ";
  for (std::size_t i = 0; i < matches.size(); ++i) {
    if (i > 0) text += i + 1 == matches.size() ? " or " : ", ";
    text += matches[i];
  }
  return text + "?";
}

}  // namespace game
