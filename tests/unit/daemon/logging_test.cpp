#include "logging.h"

#include <string>

#include <spdlog/details/log_msg.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sluice::daemon {
namespace {

nlohmann::json formatted(const std::string& logger, spdlog::level::level_enum level,
                         const std::string& text) {
  spdlog::details::log_msg msg(logger, level, text);
  spdlog::memory_buf_t out;
  JsonLogFormatter().format(msg, out);
  std::string line(out.data(), out.size());
  INFO(line);
  REQUIRE(line.back() == '\n');
  REQUIRE(line.find('\n') == line.size() - 1);  // One line, whatever the message holds.
  return nlohmann::json::parse(line);
}

TEST_CASE("JSON log lines hold ts, level, logger and msg, escaped", "[daemon]") {
  auto object = formatted("rpc", spdlog::level::warn, "connection dropped reason=\"bad\"");
  CHECK(object.size() == 4);
  CHECK(object["level"] == "warn");
  CHECK(object["logger"] == "rpc");
  CHECK(object["msg"] == "connection dropped reason=\"bad\"");
  std::string ts = object["ts"];
  CHECK(ts.size() == 24);
  CHECK(ts[10] == 'T');
  CHECK(ts.back() == 'Z');

  std::string nasty = std::string("a\\b\nc\td\re\x01\x1f\x7f") + "\"}{";
  CHECK(formatted("core", spdlog::level::info, nasty)["msg"] == nasty);
  CHECK(formatted("core", spdlog::level::err, "x")["level"] == "error");
  CHECK(formatted("core", spdlog::level::critical, "x")["level"] == "critical");
  CHECK(formatted("core", spdlog::level::debug, "x")["level"] == "debug");
}

TEST_CASE("JSON log lines keep UTF-8 and replace bytes that are not UTF-8", "[daemon]") {
  CHECK(
      formatted("main", spdlog::level::info, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")["msg"] ==
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(formatted("main", spdlog::level::info, "bad \xff\xc3 end")["msg"] ==
        "bad \xef\xbf\xbd\xef\xbf\xbd end");
  CHECK(formatted("main", spdlog::level::info, "overlong \xc0\xaf")["msg"] ==
        "overlong \xef\xbf\xbd\xef\xbf\xbd");
  CHECK(formatted("main", spdlog::level::info, "surrogate \xed\xa0\x80")["msg"] ==
        "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace sluice::daemon
