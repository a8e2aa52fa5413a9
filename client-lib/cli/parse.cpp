#include "parse.h"

#include <cctype>
#include <limits>

namespace sluice::cli {
namespace {

constexpr std::string_view kDurationRule =
    "expected a number and a unit (ms, s, m, h, d), e.g. 500ms, 30s, 5m, 24h, 7d or 1h30m";
constexpr std::string_view kSizeRule =
    "expected a number of bytes with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), "
    "e.g. 512, 64KiB, 10MiB, 2GiB";
constexpr std::string_view kTimeRule =
    "expected an RFC 3339 time such as 2024-05-01T10:00:00Z or 2024-05-01T12:00:00.250+02:00";

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads the digits at `pos` into `out`; false on no digits or overflow.
bool readDigits(std::string_view text, size_t& pos, uint64_t& out) {
  size_t start = pos;
  uint64_t value = 0;
  while (pos < text.size() && isDigit(text[pos])) {
    uint64_t digit = static_cast<uint64_t>(text[pos] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
    ++pos;
  }
  out = value;
  return pos > start;
}

// Reads exactly `count` digits at `pos`.
bool readFixed(std::string_view text, size_t& pos, size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (!isDigit(c)) return false;
    value = value * 10 + (c - '0');
  }
  pos += count;
  out = value;
  return true;
}

bool expect(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int daysInMonth(int year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

}  // namespace

Parsed<std::chrono::milliseconds> parseDuration(std::string_view text) {
  using R = Parsed<std::chrono::milliseconds>;
  auto bad = [&](std::string_view why) {
    return R::failure("invalid duration " + quoted(text) + ": " + std::string(why));
  };
  if (text == "0") return R::success(std::chrono::milliseconds(0));
  if (text.empty()) return bad(kDurationRule);
  size_t pos = 0;
  uint64_t totalMs = 0;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  while (pos < text.size()) {
    uint64_t amount = 0;
    if (!readDigits(text, pos, amount)) {
      return bad(pos < text.size() && isDigit(text[pos]) ? "value too large" : kDurationRule);
    }
    size_t unitStart = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos])))
      ++pos;
    std::string_view unit = text.substr(unitStart, pos - unitStart);
    uint64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60 * 1000;
    else if (unit == "h")
      scale = 3600 * 1000;
    else if (unit == "d")
      scale = 24 * 3600 * 1000;
    else if (unit.empty())
      return bad("missing unit; " + std::string(kDurationRule));
    else
      return bad("unknown unit " + quoted(unit) + "; " + std::string(kDurationRule));
    if (amount > kMax / scale || totalMs > kMax - amount * scale) return bad("value too large");
    totalMs += amount * scale;
  }
  return R::success(std::chrono::milliseconds(static_cast<int64_t>(totalMs)));
}

Parsed<uint64_t> parseSize(std::string_view text) {
  using R = Parsed<uint64_t>;
  auto bad = [&](std::string_view why) {
    return R::failure("invalid size " + quoted(text) + ": " + std::string(why));
  };
  size_t pos = 0;
  uint64_t amount = 0;
  if (!readDigits(text, pos, amount)) {
    return bad(pos < text.size() && isDigit(text[pos]) ? "value too large" : kSizeRule);
  }
  std::string unit = lower(text.substr(pos));
  uint64_t scale = 0;
  if (unit.empty() || unit == "b")
    scale = 1;
  else if (unit == "kib")
    scale = uint64_t{1} << 10;
  else if (unit == "mib")
    scale = uint64_t{1} << 20;
  else if (unit == "gib")
    scale = uint64_t{1} << 30;
  else if (unit == "tib")
    scale = uint64_t{1} << 40;
  else if (unit == "kb")
    scale = 1000;
  else if (unit == "mb")
    scale = 1000 * 1000;
  else if (unit == "gb")
    scale = 1000 * 1000 * 1000;
  else if (unit == "tb")
    scale = uint64_t{1000} * 1000 * 1000 * 1000;
  else
    return bad("unknown unit " + quoted(text.substr(pos)) + "; " + std::string(kSizeRule));
  if (amount > std::numeric_limits<uint64_t>::max() / scale) return bad("value too large");
  return R::success(amount * scale);
}

Parsed<int64_t> parseRfc3339(std::string_view text) {
  using R = Parsed<int64_t>;
  auto bad = [&](std::string_view why) {
    return R::failure("invalid time " + quoted(text) + ": " + std::string(why));
  };
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!readFixed(text, pos, 4, year) || !expect(text, pos, '-') ||
      !readFixed(text, pos, 2, month) || !expect(text, pos, '-') || !readFixed(text, pos, 2, day)) {
    return bad(kTimeRule);
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ')) {
    return bad(kTimeRule);
  }
  ++pos;
  if (!readFixed(text, pos, 2, hour) || !expect(text, pos, ':') ||
      !readFixed(text, pos, 2, minute) || !expect(text, pos, ':') ||
      !readFixed(text, pos, 2, second)) {
    return bad(kTimeRule);
  }
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t scale = 100;
    while (pos < text.size() && isDigit(text[pos])) {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad(kTimeRule);
  }
  int offsetMinutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int offHours = 0, offMinutes = 0;
    if (!readFixed(text, pos, 2, offHours) || !expect(text, pos, ':') ||
        !readFixed(text, pos, 2, offMinutes) || offHours > 23 || offMinutes > 59) {
      return bad(kTimeRule);
    }
    offsetMinutes = sign * (offHours * 60 + offMinutes);
  } else {
    return bad("missing time zone (Z or +HH:MM); " + std::string(kTimeRule));
  }
  if (pos != text.size()) return bad(kTimeRule);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return bad("date or time out of range");
  }
  if (second == 60) second = 59;  // A leap second; Unix time has none.
  int64_t days = daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60;
  return R::success(seconds * 1000 + millis);
}

Parsed<uint64_t> parseUnsigned(std::string_view text) {
  size_t pos = 0;
  uint64_t value = 0;
  if (!readDigits(text, pos, value) || pos != text.size()) {
    return Parsed<uint64_t>::failure("invalid number " + quoted(text) +
                                     ": expected a non-negative whole number");
  }
  return Parsed<uint64_t>::success(value);
}

Parsed<StartPosition> parseStartPosition(std::string_view text, int64_t nowMs) {
  using R = Parsed<StartPosition>;
  if (text == "earliest") return R::success(StartPosition::earliest());
  if (text == "latest") return R::success(StartPosition::latest());
  if (!text.empty() && isDigit(text.front())) {
    auto offset = parseUnsigned(text);
    if (offset.ok()) {
      if (*offset.value == 0) {
        return R::failure("invalid position \"0\": offsets start at 1");
      }
      return R::success(StartPosition::atOffset(*offset.value));
    }
    auto ago = parseDuration(text);
    if (ago.ok()) return R::success(StartPosition::atTime(nowMs - ago.value->count()));
    auto time = parseRfc3339(text);
    if (time.ok()) return R::success(StartPosition::atTime(*time.value));
  }
  return R::failure("invalid position " + quoted(text) +
                    ": expected earliest, latest, an offset (e.g. 42), an RFC 3339 time "
                    "(e.g. 2024-05-01T10:00:00Z) or a duration ago (e.g. 1h)");
}

Parsed<std::pair<std::string, std::string>> parseHeader(std::string_view text) {
  using R = Parsed<std::pair<std::string, std::string>>;
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return R::failure("invalid header " + quoted(text) + ": expected KEY=VALUE, e.g. source=web");
  }
  return R::success({std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))});
}

Parsed<std::vector<std::string>> parsePatternList(std::string_view text) {
  using R = Parsed<std::vector<std::string>>;
  auto bad = [&](const std::string& why) {
    return R::failure("invalid pattern list " + quoted(text) + ": " + why +
                      "; expected PATTERN[,PATTERN...], e.g. orders.> or orders.*.created,audit.>");
  };
  if (text.empty()) return bad("no pattern");
  std::vector<std::string> patterns;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string_view pattern = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (pattern.empty()) return bad("pattern " + std::to_string(patterns.size() + 1) + " is empty");
    patterns.emplace_back(pattern);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return R::success(std::move(patterns));
}

std::vector<std::string> patternsOf(const std::vector<std::string>& lists) {
  std::vector<std::string> patterns;
  for (const auto& list : lists) {
    Parsed<std::vector<std::string>> parsed = parsePatternList(list);
    for (auto& pattern : *parsed.value)
      patterns.push_back(std::move(pattern));
  }
  return patterns;
}

Parsed<Rule> parseRule(std::string_view text, bool allow) {
  using R = Parsed<Rule>;
  auto bad = [&](const std::string& why) {
    return R::failure("invalid rule " + quoted(text) + ": " + why +
                      "; expected ACTIONS:PATTERN, ACTIONS a comma-separated list of publish, "
                      "consume, manage, admin (or all), e.g. publish,consume:orders.>");
  };
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return bad("no ':' between the actions and the pattern");
  std::string_view actions = text.substr(0, colon);
  Rule rule;
  rule.allow = allow;
  rule.pattern = std::string(text.substr(colon + 1));
  if (actions.empty()) return bad("no action before ':'");
  if (rule.pattern.empty()) return bad("no pattern after ':'");
  auto add = [&rule](Action action) {
    for (Action known : rule.actions) {
      if (known == action) return;
    }
    rule.actions.push_back(action);
  };
  size_t start = 0;
  for (size_t index = 1;; ++index) {
    size_t comma = actions.find(',', start);
    std::string_view name = actions.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (name.empty()) return bad("action " + std::to_string(index) + " is empty");
    if (name == "all") {
      for (Action action : {Action::kPublish, Action::kConsume, Action::kManage, Action::kAdmin})
        add(action);
    } else if (std::optional<Action> action = parseAction(name)) {
      add(*action);
    } else {
      return bad("unknown action " + quoted(name));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return R::success(std::move(rule));
}

std::vector<Rule> rulesOf(const std::vector<std::string>& allows,
                          const std::vector<std::string>& denies) {
  std::vector<Rule> rules;
  for (const auto& text : allows)
    rules.push_back(*parseRule(text, true).value);
  for (const auto& text : denies)
    rules.push_back(*parseRule(text, false).value);
  return rules;
}

std::string trimTrailingSpace(std::string_view text) {
  size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(end == std::string_view::npos ? std::string_view() : text.substr(0, end + 1));
}

bool isYes(std::string_view answer) {
  size_t begin = answer.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return false;
  size_t end = answer.find_last_not_of(" \t\r\n");
  std::string word = lower(answer.substr(begin, end - begin + 1));
  return word == "y" || word == "yes";
}

}  // namespace sluice::cli
