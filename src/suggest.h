// "Did you mean ...?" for a mistyped subcommand or server name, as git answers `git comit`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace game {

// The candidates closest to `word` (optimal string alignment distance: a swap of two neighbours
// counts as one edit), if any is close enough to be what was meant; nearest first, ties in the
// candidates' order.
std::vector<std::string> close_matches(std::string_view word, const std::vector<std::string>& candidates);

// "; did you mean score?" / "; did you mean score or setname?", or "" when nothing is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace game
