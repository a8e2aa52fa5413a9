#pragma once

// sluiced's logs: one named spdlog logger per module (main, core, store, rpc, admin) on one
// stderr sink, as text (default) or as JSON lines for log collectors. Thread: main sets them
// up before any other thread starts; the loggers are then used from every thread.

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

namespace sluice::daemon {

// Creates and registers the module loggers. `level`: trace, debug, info, warn, error,
// critical or off. `format`: "text" (`2024-05-01T10:00:00.123 info rpc message`) or "json".
void setUpLogging(const std::string& level, const std::string& format);

// Formats a record as one JSON object and a newline:
//   {"ts":"2024-05-01T10:00:00.123Z","level":"warn","logger":"rpc","msg":"..."}
// ts is UTC (RFC 3339, milliseconds); level is trace, debug, info, warn, error or critical.
// The message is escaped (quotes, backslashes, control characters, and bytes that are not
// UTF-8, which become U+FFFD), so every line parses whatever a message holds.
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace sluice::daemon
