#pragma once

// Human output: units (`1.2 MiB`, `3.4k msg/s`, `2m13s`), RFC 3339 timestamps, aligned
// tables and field lists, and the human rendering of a message. Pure functions, unit-tested.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "encoding.h"  // formatTimestamp
#include "sluice/client.h"

namespace sluice::cli {

// Bytes in IEC units: `512 B`, `1.2 MiB`, `64 KiB`, `10 GiB`. One decimal below 10 units.
std::string formatBytes(uint64_t bytes);
// A count with an SI suffix: `950`, `3.4k`, `12k`, `1.5M`; fractions below 10 keep one
// decimal (`0.5`). Negative, NaN and infinite values print as `0`.
std::string formatSi(double value);
// `3.4k msg/s`.
std::string formatRate(double perSecond, const std::string& unit = "msg/s");
// A duration in its two largest units without zero parts: `450ms`, `1.5s`, `13s`, `2m13s`,
// `1h`, `3h7m`, `7d`, `2d4h`. Negative durations print as `0s`.
std::string formatDuration(int64_t ms);
// A value, or `-` when it is zero (for optional limits and offsets of empty topics).
std::string orDash(const std::string& formatted, bool isZero);

// A table with a header row; columns separated by two spaces. Right-aligned columns suit
// numbers. Widths count UTF-8 code points.
class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = Align::kLeft;
  };

  explicit Table(std::vector<Column> columns);
  // Precondition: cells.size() == number of columns.
  void addRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  // Every line ends with '\n'; trailing spaces are trimmed.
  std::string render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// `Label:  value` lines with the values aligned, each ending with '\n'.
std::string renderFields(const std::vector<std::pair<std::string, std::string>>& fields);

// The human form of one message: a header line (offset, time, subject, key, deliveries,
// headers) and the payload as text, or `<N bytes, not UTF-8; base64: ...>`. Ends with '\n'.
std::string formatMessage(const Message& message);

// Message `index` of a routed publish as one line without '\n': `TOPIC=OFFSET` per capturing
// topic, in the broker's order, separated by spaces (`audit=12 orders=5`).
std::string formatRoutedAck(const RoutedAcks& acks, size_t index);

// Subject patterns as the CLI accepts them back: `orders.>,audit.*`; empty for none.
std::string joinPatterns(const std::vector<std::string>& patterns);

// Actions as the CLI accepts them back: `publish,consume`, or `all` for the four.
std::string formatActions(const std::vector<Action>& actions);
// A rule as its option: `allow publish,consume:orders.>`, `deny consume:orders.secret`.
std::string formatRule(const Rule& rule);
// Rules separated by `; `, or `none`.
std::string formatRules(const std::vector<Rule>& rules);
// An expiry time: `never` for 0, else RFC 3339.
std::string formatExpiry(int64_t unixMs);

}  // namespace sluice::cli
