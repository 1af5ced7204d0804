// Reading the known-answer files of tests/data/ (one "description<TAB>hex" a line).
#pragma once

#include <fstream>
#include <string>
#include <vector>

namespace game::test {

struct HexVector {
  std::string description;
  std::string hex;
};

inline std::vector<HexVector> load_hex_vectors(const char* path) {
  std::ifstream in(path);
  std::vector<HexVector> out;
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    if (tab != std::string::npos) out.push_back({line.substr(0, tab), line.substr(tab + 1)});
  }
  return out;
}

inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

}  // namespace game::test
