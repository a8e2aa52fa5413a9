#include "parse.h"

#include <catch2/catch.hpp>

using namespace sluice::cli;
using Catch::Matchers::Contains;
using std::chrono::milliseconds;

TEST_CASE("durations accept ms, s, m, h and d, alone or combined", "[cli][parse]") {
  struct Case {
    const char* text;
    int64_t ms;
  };
  const Case cases[] = {
      {"500ms", 500},    {"30s", 30000},    {"5m", 300000},
      {"24h", 86400000}, {"7d", 604800000}, {"1h30m", 5400000},
      {"0", 0},          {"0s", 0},         {"1d2h3m4s5ms", 93784005},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = parseDuration(c.text);
    REQUIRE(parsed.ok());
    CHECK(parsed.value->count() == c.ms);
  }
}

TEST_CASE("a bad duration is rejected with a message naming it and the units", "[cli][parse]") {
  for (const char* text : {"", "5", "5x", "ms", "-5s", "1.5s", "5 s", "5S", "s5", "5s5"}) {
    INFO(text);
    auto parsed = parseDuration(text);
    CHECK_FALSE(parsed.ok());
    CHECK_THAT(parsed.error, Contains(std::string("\"") + text + "\""));
  }
  CHECK_THAT(parseDuration("5x").error, Contains("unknown unit \"x\""));
  CHECK_THAT(parseDuration("5").error, Contains("missing unit"));
  CHECK_THAT(parseDuration("5").error, Contains("500ms, 30s, 5m, 24h, 7d"));
}

TEST_CASE("a duration that overflows is rejected", "[cli][parse]") {
  CHECK_THAT(parseDuration("99999999999999999999d").error, Contains("too large"));
  CHECK_THAT(parseDuration("999999999999999d").error, Contains("too large"));
  CHECK(parseDuration("9223372036854775807ms").ok());
  CHECK_FALSE(parseDuration("9223372036854775807ms1ms").ok());
}

TEST_CASE("sizes accept bytes, IEC and SI units", "[cli][parse]") {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"512", 512},
      {"0", 0},
      {"512B", 512},
      {"64KiB", 64 * 1024},
      {"10MiB", 10 * 1024 * 1024},
      {"2GiB", 2ULL << 30},
      {"1TiB", 1ULL << 40},
      {"64kib", 64 * 1024},
      {"1KB", 1000},
      {"10MB", 10000000},
      {"2gb", 2000000000},
      {"1TB", 1000000000000ULL},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = parseSize(c.text);
    REQUIRE(parsed.ok());
    CHECK(*parsed.value == c.bytes);
  }
}

TEST_CASE("a bad size is rejected with a message naming it and the units", "[cli][parse]") {
  for (const char* text : {"", "10K", "10M", "1.5MiB", "-1", "MiB", "10 MiB", "10Mi", "ten"}) {
    INFO(text);
    auto parsed = parseSize(text);
    CHECK_FALSE(parsed.ok());
    CHECK_THAT(parsed.error, Contains(std::string("invalid size \"") + text + "\""));
    CHECK_THAT(parsed.error, Contains("KiB"));
  }
  CHECK_THAT(parseSize("20000000000EiB").error, Contains("unknown unit"));
  CHECK_THAT(parseSize("20000000000TiB").error, Contains("too large"));
  CHECK_THAT(parseSize("99999999999999999999").error, Contains("too large"));
}

TEST_CASE("RFC 3339 times convert to Unix milliseconds", "[cli][parse]") {
  struct Case {
    const char* text;
    int64_t ms;
  };
  const Case cases[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"2024-05-01T10:00:00Z", 1714557600000},
      {"2024-05-01T10:00:00.123Z", 1714557600123},
      {"2024-05-01T10:00:00.1Z", 1714557600100},
      {"2024-05-01T10:00:00.123999Z", 1714557600123},
      {"2024-05-01T12:00:00+02:00", 1714557600000},
      {"2024-05-01T05:30:00-04:30", 1714557600000},
      {"2024-05-01t10:00:00z", 1714557600000},
      {"2024-05-01 10:00:00Z", 1714557600000},
      {"2024-02-29T00:00:00Z", 1709164800000},
      {"1969-12-31T23:59:59Z", -1000},
      {"2016-12-31T23:59:60Z", 1483228799000},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = parseRfc3339(c.text);
    REQUIRE(parsed.ok());
    CHECK(*parsed.value == c.ms);
  }
}

TEST_CASE("malformed or out-of-range times are rejected", "[cli][parse]") {
  for (const char* text :
       {"", "2024-05-01", "2024-05-01T10:00:00", "2024-05-01T10:00Z", "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T10:60:00Z",
        "2024-05-01T10:00:00.Z", "2024-05-01T10:00:00+0200", "2024-05-01T10:00:00Zjunk",
        "24-05-01T10:00:00Z", "yesterday"}) {
    INFO(text);
    auto parsed = parseRfc3339(text);
    CHECK_FALSE(parsed.ok());
    CHECK_THAT(parsed.error, Contains(std::string("\"") + text + "\""));
  }
  CHECK_THAT(parseRfc3339("2024-05-01T10:00:00").error, Contains("missing time zone"));
}

TEST_CASE("start positions: earliest, latest, offsets, times and durations ago", "[cli][parse]") {
  using Kind = sluice::StartPosition::Kind;
  auto earliest = parseStartPosition("earliest", 0);
  REQUIRE(earliest.ok());
  CHECK(earliest.value->kind == Kind::kEarliest);
  CHECK(parseStartPosition("latest", 0).value->kind == Kind::kLatest);
  auto offset = parseStartPosition("42", 0);
  REQUIRE(offset.ok());
  CHECK(offset.value->kind == Kind::kOffset);
  CHECK(offset.value->offset == 42);
  auto time = parseStartPosition("2024-05-01T10:00:00Z", 0);
  REQUIRE(time.ok());
  CHECK(time.value->kind == Kind::kTimestamp);
  CHECK(time.value->timestampMs == 1714557600000);
  auto ago = parseStartPosition("1h", 1714557600000);
  REQUIRE(ago.ok());
  CHECK(ago.value->kind == Kind::kTimestamp);
  CHECK(ago.value->timestampMs == 1714557600000 - 3600000);

  for (const char* text : {"", "first", "-1", "1.5", "Earliest", "5x"}) {
    INFO(text);
    auto parsed = parseStartPosition(text, 0);
    CHECK_FALSE(parsed.ok());
    CHECK_THAT(parsed.error, Contains(std::string("invalid position \"") + text + "\""));
  }
  CHECK_THAT(parseStartPosition("0", 0).error, Contains("offsets start at 1"));
}

TEST_CASE("headers split at the first equals sign", "[cli][parse]") {
  auto header = parseHeader("trace=a=b");
  REQUIRE(header.ok());
  CHECK(header.value->first == "trace");
  CHECK(header.value->second == "a=b");
  CHECK(parseHeader("empty=").value->second.empty());
  CHECK_THAT(parseHeader("novalue").error, Contains("\"novalue\""));
  CHECK_FALSE(parseHeader("=v").ok());
}

TEST_CASE("unsigned numbers accept digits only", "[cli][parse]") {
  CHECK(*parseUnsigned("18446744073709551615").value == UINT64_MAX);
  CHECK_FALSE(parseUnsigned("18446744073709551616").ok());
  CHECK_FALSE(parseUnsigned("-1").ok());
  CHECK_FALSE(parseUnsigned("1 ").ok());
  CHECK_FALSE(parseUnsigned("").ok());
}

TEST_CASE("only y or yes confirms", "[cli][parse]") {
  CHECK(isYes("y"));
  CHECK(isYes("YES\n"));
  CHECK(isYes("  Yes "));
  CHECK_FALSE(isYes(""));
  CHECK_FALSE(isYes("n"));
  CHECK_FALSE(isYes("yess"));
  CHECK_FALSE(isYes("sure"));
}

TEST_CASE("pattern lists split at commas and keep each pattern as written", "[cli][parse]") {
  using Patterns = std::vector<std::string>;
  CHECK(*parsePatternList("orders.>").value == Patterns{"orders.>"});
  CHECK(*parsePatternList(">").value == Patterns{">"});
  CHECK(*parsePatternList("orders.*.created,audit.>").value ==
        Patterns{"orders.*.created", "audit.>"});
  // The grammar is the broker's to check: a list of bad patterns still parses as a list.
  CHECK(*parsePatternList("ord*,a..b").value == Patterns{"ord*", "a..b"});
  CHECK(patternsOf({"a.>,b.*", "c"}) == Patterns{"a.>", "b.*", "c"});
  CHECK(patternsOf({}).empty());
}

TEST_CASE("an empty pattern list or an empty pattern in one is rejected", "[cli][parse]") {
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {{"", "no pattern"},
                        {",", "pattern 1 is empty"},
                        {"a,", "pattern 2 is empty"},
                        {",a", "pattern 1 is empty"},
                        {"a,,b", "pattern 2 is empty"}};
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = parsePatternList(c.text);
    CHECK_FALSE(parsed.ok());
    CHECK_THAT(parsed.error, Contains(std::string("invalid pattern list \"") + c.text + "\""));
    CHECK_THAT(parsed.error, Contains(c.why));
    CHECK_THAT(parsed.error, Contains("PATTERN[,PATTERN...]"));
  }
}
