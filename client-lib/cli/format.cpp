#include "format.h"

#include <cmath>
#include <cstdio>

#include "encoding.h"

namespace sluice::cli {
namespace {

size_t displayWidth(const std::string& text) {
  size_t width = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;
  }
  return width;
}

// `value` with one decimal, dropping a trailing `.0`.
std::string oneDecimal(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  std::string text = buffer;
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text;
}

std::string scaled(double value) {
  // Rounding decides the branch, so 9.96 prints as `10`, not `10.0`.
  if (std::round(value * 10) / 10 < 10) return oneDecimal(value);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.0f", value);
  return buffer;
}

}  // namespace

std::string formatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  // 1023.96 KiB would print as "1024 KiB"; promote it to the next unit instead.
  if (std::round(value) >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return scaled(value) + " " + kUnits[unit];
}

std::string formatSi(double value) {
  if (!(value > 0) || std::isinf(value)) return "0";
  static const char* kSuffixes[] = {"", "k", "M", "G", "T", "P"};
  size_t unit = 0;
  while (std::round(value) >= 1000 && unit + 1 < std::size(kSuffixes)) {
    value /= 1000;
    ++unit;
  }
  return scaled(value) + kSuffixes[unit];
}

std::string formatRate(double perSecond, const std::string& unit) {
  return formatSi(perSecond) + " " + unit;
}

std::string formatDuration(int64_t ms) {
  if (ms <= 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms < 10000) return oneDecimal(static_cast<double>(ms / 100) / 10) + "s";
  struct Unit {
    int64_t ms;
    const char* name;
  };
  static const Unit kUnits[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  std::string out;
  int parts = 0;
  int64_t rest = ms;
  for (const Unit& unit : kUnits) {
    if (parts == 0 && rest < unit.ms) continue;  // Skip leading zero units.
    int64_t amount = rest / unit.ms;
    rest %= unit.ms;
    if (amount > 0) out += std::to_string(amount) + unit.name;
    if (++parts == 2) break;
  }
  return out;
}

std::string orDash(const std::string& formatted, bool isZero) {
  return isZero ? "-" : formatted;
}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::addRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::render() const {
  std::vector<size_t> widths(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c)
    widths[c] = displayWidth(columns_[c].title);
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], displayWidth(row[c]));
  }
  auto line = [&](auto cellAt) {
    std::string out;
    for (size_t c = 0; c < columns_.size(); ++c) {
      const std::string& cell = cellAt(c);
      std::string padding(widths[c] - displayWidth(cell), ' ');
      if (c > 0) out += "  ";
      if (columns_[c].align == Align::kRight)
        out += padding + cell;
      else
        out += cell + padding;
    }
    size_t end = out.find_last_not_of(' ');
    out.resize(end == std::string::npos ? 0 : end + 1);
    return out + "\n";
  };
  std::string out = line([&](size_t c) -> const std::string& { return columns_[c].title; });
  for (const auto& row : rows_) {
    out += line([&](size_t c) -> const std::string& { return row[c]; });
  }
  return out;
}

std::string renderFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& field : fields)
    width = std::max(width, displayWidth(field.first) + 1);
  std::string out;
  for (const auto& [label, value] : fields) {
    out += label + ":" + std::string(width - displayWidth(label) - 1, ' ') + "  " + value + "\n";
  }
  return out;
}

std::string formatMessage(const Message& message) {
  std::string out =
      "offset " + std::to_string(message.offset()) + "  " + formatTimestamp(message.timestampMs());
  if (!message.subject().empty()) out += "  subject=" + message.subject();
  if (message.key()) {
    const std::string& key = *message.key();
    out += isValidUtf8(key) ? "  key=" + key : "  key_base64=" + base64Encode(key);
  }
  if (message.deliveries() > 0) out += "  deliveries=" + std::to_string(message.deliveries());
  if (!message.id().empty()) out += "  id=" + message.id();
  if (message.deliverAtMs() != 0) out += "  deliver_at=" + formatTimestamp(message.deliverAtMs());
  if (message.expiresAtMs() != 0) out += "  expires_at=" + formatTimestamp(message.expiresAtMs());
  for (const auto& [name, value] : message.headers())
    out += "  " + name + "=" + value;
  out += "\n";
  const std::string& payload = message.payload();
  if (isValidUtf8(payload)) {
    out += payload;
    if (payload.empty() || payload.back() != '\n') out += "\n";
  } else {
    out += "<" + std::to_string(payload.size()) +
           " bytes, not UTF-8; base64: " + base64Encode(payload) + ">\n";
  }
  return out;
}

std::string formatRoutedAck(const RoutedAcks& acks, size_t index) {
  std::string out;
  for (const auto& [topic, topicAcks] : acks) {
    if (!out.empty()) out += ' ';
    out += topic + "=" + std::to_string(topicAcks.at(index).offset);
  }
  return out;
}

std::string joinPatterns(const std::vector<std::string>& patterns) {
  std::string out;
  for (const auto& pattern : patterns)
    out += (out.empty() ? "" : ",") + pattern;
  return out;
}

std::string formatActions(const std::vector<Action>& actions) {
  bool seen[4] = {false, false, false, false};
  std::string out;
  for (Action action : actions) {
    auto index = static_cast<size_t>(action);
    if (index < std::size(seen)) seen[index] = true;
    out += (out.empty() ? "" : ",") + std::string(actionName(action));
  }
  if (seen[0] && seen[1] && seen[2] && seen[3]) return "all";
  return out;
}

std::string formatRule(const Rule& rule) {
  return std::string(rule.allow ? "allow " : "deny ") + formatActions(rule.actions) + ":" +
         rule.pattern;
}

std::string formatRules(const std::vector<Rule>& rules) {
  if (rules.empty()) return "none";
  std::string out;
  for (const auto& rule : rules)
    out += (out.empty() ? "" : "; ") + formatRule(rule);
  return out;
}

std::string formatExpiry(int64_t unixMs) {
  return unixMs == 0 ? "never" : formatTimestamp(unixMs);
}

}  // namespace sluice::cli
