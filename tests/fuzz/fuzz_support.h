#pragma once

// What the libFuzzer targets share: the oracle's assertion, and writing seed files when
// SLUICE_FUZZ_WRITE_SEEDS=DIR is set (scripts/fuzz.sh --seeds).

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::fuzz {

// Stops the run with a reproducer: libFuzzer reports the abort and saves the input.
inline void check(bool condition) {
  if (!condition) std::abort();
}

// Writes DIR/<name> holding `bytes` (DIR made when missing).
inline void writeFile(const std::string& dir, const std::string& name, std::string_view bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

// Writes DIR/<name> holding the selector byte `kind` followed by `body`.
inline void writeSeed(const std::string& dir, const std::string& name, char kind,
                      std::string_view body) {
  writeFile(dir, name, std::string(1, kind) + std::string(body));
}

// Writes DIR/seed0, seed1, ...: one per (selector byte, text).
inline void writeSeeds(const std::string& dir,
                       const std::vector<std::pair<int, std::string>>& seeds) {
  int n = 0;
  for (const auto& [kind, text] : seeds) {
    writeSeed(dir, "seed" + std::to_string(n++), static_cast<char>(kind), text);
  }
}

// For LLVMFuzzerInitialize: when SLUICE_FUZZ_WRITE_SEEDS names a directory, `write` fills it
// and the program exits instead of fuzzing.
template <typename WriteSeeds>
void writeSeedsIfAsked(WriteSeeds&& write) {
  const char* dir = std::getenv("SLUICE_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  write(std::string(dir));
  std::printf("seeds written to %s\n", dir);
  std::exit(0);
}

}  // namespace sluice::fuzz
