#pragma once

// Parsing of the CLI's value syntaxes: DUR, SIZE, TIME, start positions, header pairs,
// subject pattern lists, access rules.
// Pure functions with no I/O, unit-tested in tests/cli/parse_test.cpp.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/types.h"

namespace sluice::cli {

// The outcome of parsing one value: the value, or a message that names the bad input and
// states the accepted syntax (shown to the user as is).
template <typename T>
struct Parsed {
  std::optional<T> value;
  std::string error;

  bool ok() const { return value.has_value(); }
  static Parsed success(T v) { return Parsed{std::move(v), {}}; }
  static Parsed failure(std::string why) { return Parsed{std::nullopt, std::move(why)}; }
};

// DUR: one or more <digits><unit> groups, units ms, s, m, h, d: `500ms`, `30s`, `5m`, `24h`,
// `7d`, `1h30m`. A bare `0` means zero. No sign, no fractions, no spaces.
Parsed<std::chrono::milliseconds> parseDuration(std::string_view text);

// SIZE in bytes: <digits>[unit]. IEC units are powers of 1024 (KiB, MiB, GiB, TiB), SI units
// powers of 1000 (KB, MB, GB, TB); `B` or no unit means bytes. Units are case-insensitive
// (`64kib` = `64KiB`). A bare `K`, `M` or `G` is rejected as ambiguous.
Parsed<uint64_t> parseSize(std::string_view text);

// TIME: an RFC 3339 timestamp, `2024-05-01T10:00:00Z`, `2024-05-01T12:00:00.250+02:00`
// (`t`, `z` and a space separator are also accepted, as RFC 3339 allows). Returns Unix
// milliseconds; digits past milliseconds are truncated.
Parsed<int64_t> parseRfc3339(std::string_view text);

// A decimal u64 with no sign, spaces or other characters.
Parsed<uint64_t> parseUnsigned(std::string_view text);

// `earliest`, `latest`, an offset (digits), an RFC 3339 time, or a DUR meaning "that long
// before `nowMs`" (`--from 1h`).
Parsed<StartPosition> parseStartPosition(std::string_view text, int64_t nowMs);

// `K=V` (the first `=` splits; K must not be empty; V may be).
Parsed<std::pair<std::string, std::string>> parseHeader(std::string_view text);

// PATTERN[,PATTERN...]: subject patterns separated by commas (no subject or pattern contains
// one), none of them empty: `orders.>`, `orders.*.created,audit.>`. Only the list is checked
// here; the broker checks each pattern's grammar and its answer says what is wrong.
Parsed<std::vector<std::string>> parsePatternList(std::string_view text);

// Every pattern of repeated PATTERN[,PATTERN...] values, in order. Each value must parse
// (the option's validator already accepted it).
std::vector<std::string> patternsOf(const std::vector<std::string>& lists);

// ACTIONS:PATTERN, the rule of an `--allow` (allow true) or `--deny` option: ACTIONS is a
// comma-separated list of publish, consume, manage and admin, or `all` for the four (named
// twice is once); PATTERN a subject pattern, everything after the first `:`
// (`publish,consume:orders.>`, `all:>`). Only the shape is checked here; the broker checks the
// pattern's grammar and its answer says what is wrong.
Parsed<Rule> parseRule(std::string_view text, bool allow);

// The rules of repeated --allow and --deny values: the allow rules in order, then the deny
// ones (order does not matter to the broker: a matching deny wins). Each value must parse (the
// option's validator already accepted it).
std::vector<Rule> rulesOf(const std::vector<std::string>& allows,
                          const std::vector<std::string>& denies);

// `text` without its trailing whitespace (spaces, tabs, CR, LF): the secret in a token file.
std::string trimTrailingSpace(std::string_view text);

// `y` / `yes` (any case, surrounding spaces ignored) is true; anything else is false.
bool isYes(std::string_view answer);

}  // namespace sluice::cli
