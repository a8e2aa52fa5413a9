#include "logging.h"

#include <ctime>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace sluice::daemon {
namespace {

const char* levelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

}  // namespace

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  auto sinceEpoch = duration_cast<milliseconds>(msg.time.time_since_epoch());
  std::time_t seconds = static_cast<std::time_t>(sinceEpoch.count() / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char ts[40];
  size_t n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(ts + n, sizeof ts - n, ".%03dZ", static_cast<int>(sinceEpoch.count() % 1000));

  // nlohmann escapes quotes, backslashes and control characters, and `replace` turns bytes
  // that are not UTF-8 into U+FFFD, so every line parses whatever a message holds.
  nlohmann::ordered_json object = {
      {"ts", ts},
      {"level", levelName(msg.level)},
      {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
      {"msg", std::string(msg.payload.data(), msg.payload.size())}};
  std::string line =
      object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

void setUpLogging(const std::string& level, const std::string& format) {
  spdlog::sink_ptr sink;
  if (format == "json") {
    // No colour codes in JSON, even on a terminal.
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<JsonLogFormatter>());
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n %v");
  }
  for (const char* name : {"main", "core", "store", "rpc", "admin", "cluster"}) {
    spdlog::drop(name);
    spdlog::register_logger(std::make_shared<spdlog::logger>(name, sink));
  }
  spdlog::set_default_logger(spdlog::get("main"));
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace sluice::daemon
