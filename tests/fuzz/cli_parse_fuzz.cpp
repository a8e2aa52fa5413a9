// libFuzzer target: the CLI's value syntaxes (client-lib/cli/parse.h): DUR, SIZE, TIME,
// offsets, start positions and header pairs, as a user types them.
//
// The first byte picks the parser; the rest is its input. Beyond "no crash, no sanitizer
// report": a rejection carries a message, and accepted values obey the stated rules.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "parse.h"

namespace {

using namespace sluice;

using fuzz::check;

template <typename T>
void checkParsed(const cli::Parsed<T>& parsed) {
  if (!parsed.ok()) check(!parsed.error.empty());
}

void writeSeeds(const std::string& dir) {
  const std::vector<std::pair<int, std::string>> seeds = {{0, "1h30m"},
                                                          {0, "500ms"},
                                                          {0, "7d"},
                                                          {1, "64KiB"},
                                                          {1, "20GB"},
                                                          {1, "12"},
                                                          {2, "2024-05-01T12:00:00.250+02:00"},
                                                          {2, "2024-05-01 10:00:00Z"},
                                                          {3, "18446744073709551615"},
                                                          {3, "007"},
                                                          {4, "latest"},
                                                          {4, "15m"},
                                                          {4, "42"},
                                                          {4, "2024-05-01T10:00:00Z"},
                                                          {5, "k=v=w"},
                                                          {6, " YES "}};
  fuzz::writeSeeds(dir, seeds);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::writeSeedsIfAsked(writeSeeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0: {
      auto parsed = cli::parseDuration(text);
      checkParsed(parsed);
      if (parsed.ok()) check(parsed.value->count() >= 0);
      break;
    }
    case 1:
      checkParsed(cli::parseSize(text));
      break;
    case 2:
      checkParsed(cli::parseRfc3339(text));
      break;
    case 3: {
      auto parsed = cli::parseUnsigned(text);
      checkParsed(parsed);
      if (parsed.ok()) {
        std::string digits(text);
        size_t first = digits.find_first_not_of('0');
        digits = first == std::string::npos ? "0" : digits.substr(first);
        check(std::to_string(*parsed.value) == digits);
      }
      break;
    }
    case 4:
      checkParsed(cli::parseStartPosition(text, 1700000000000));
      break;
    case 5: {
      auto parsed = cli::parseHeader(text);
      checkParsed(parsed);
      if (parsed.ok()) check(!parsed.value->first.empty());
      break;
    }
    default:
      (void)cli::isYes(text);
      break;
  }
  return 0;
}
