// libFuzzer target: validation of what clients send as names and settings: topic, group and
// message-id names and headers (broker/src/core/names.h), topic settings (checkSettings), and
// sluiced's --max-storage sizes (broker/src/config.h).
//
// The first byte picks the function; the rest is its input. Beyond "no crash, no sanitizer
// report", each accepted value must obey the rule its function states, and each rejection must
// come with a message. (The CLI's parsers are in cli_parse_fuzz.cpp: the client's public types
// and the broker's share names, so they live in different programs.)

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "core/broker.h"
#include "core/names.h"
#include "fuzz_support.h"

namespace {

using namespace sluice;

using fuzz::check;

bool nameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

void checkName(std::string_view text, bool topic) {
  auto problem = topic ? core::validateTopicName(text) : core::validateGroupName(text);
  if (problem) return check(!problem->empty());
  check(!text.empty() && text.size() <= core::kMaxNameLength);
  for (char c : text)
    check(nameChar(c));
  if (topic) {
    check(text.front() != '.' && text.back() != '.');
    check(text.find("..") == std::string_view::npos);
  }
}

void checkMessageId(std::string_view text) {
  auto problem = core::validateMessageId(text);
  if (problem) return check(!problem->empty());
  check(text.size() <= core::kMaxMessageIdLength);
  for (char c : text)
    check(c > 0x20 && c < 0x7f);
}

// "k=v" lines become headers.
void checkHeaders(std::string_view text) {
  HeaderList headers;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    size_t eq = line.find('=');
    headers.emplace_back(std::string(line.substr(0, eq)),
                         eq == std::string_view::npos ? "" : std::string(line.substr(eq + 1)));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  auto problem = core::validateHeaders(headers);
  if (problem) return check(!problem->empty());
  check(headers.size() <= core::kMaxHeaderCount);
  for (const auto& [key, value] : headers) {
    check(!key.empty() && key.size() <= core::kMaxHeaderKeyLength);
    check(key.find(':') == std::string::npos);
  }
}

void checkQuoted(std::string_view text) {
  std::string shown = core::quoted(text);
  check(shown.size() >= 2 && shown.front() == '"' && shown.back() == '"');
  check(shown.size() <= 2 + 64 * 4 + 3);  // At most 64 bytes shown, each at most \xNN.
  for (char c : shown)
    check(c >= 0x20 && c < 0x7f);
}

// Fixed-width fields from the input, then the dead-letter topic name.
void checkSettings(std::string_view text) {
  uint8_t raw[41] = {};
  std::memcpy(raw, text.data(), std::min(text.size(), sizeof raw));
  auto u64 = [&](int at) {
    uint64_t v;
    std::memcpy(&v, raw + at, 8);
    return v;
  };
  core::RequestedSettings requested;
  requested.maxAgeMs = u64(0);
  requested.maxBytes = u64(8);
  requested.maxMessages = u64(16);
  requested.dedupWindowMs = u64(24);
  std::memcpy(&requested.maxMessageSize, raw + 32, 4);
  std::memcpy(&requested.maxDeliveries, raw + 36, 4);
  requested.workQueue = (raw[40] & 1) != 0;
  if (text.size() > sizeof raw) requested.deadLetterTopic = std::string(text.substr(sizeof raw));
  core::Limits limits;
  auto result = core::checkSettings("fuzz.topic", requested, limits);
  if (result.problem) return check(!result.problem->empty());
  check(result.effective.maxMessageSize >= 1);
  check(result.effective.maxMessageSize <= limits.maxMessageSizeCap);
  check(result.effective.dedupWindowMs > 0);
  check(result.effective.maxBytes == 0 ||
        result.effective.maxBytes >= result.effective.maxMessageSize);
  if (!result.effective.deadLetterTopic.empty()) {
    check(!core::validateTopicName(result.effective.deadLetterTopic));
    check(result.effective.deadLetterTopic != "fuzz.topic");
    check(result.effective.maxDeliveries > 0);
  }
}

// Seeds: valid and invalid examples, prefixed with their selector byte.
void writeSeeds(const std::string& dir) {
  const std::vector<std::pair<int, std::string>> seeds = {
      {0, "orders.eu.created"},
      {0, "a..b"},
      {1, "workers-1_x"},
      {2, "order-42"},
      {3, "trace=abc\nn=1"},
      {4, "caf\xc3\xa9 \"q\""},
      {5, std::string(41, '\0') + "orders.dead"},
      {6, "512MiB"},
      {6, "auto"},
      {6, "16mb"}};
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
    case 0:
      checkName(text, true);
      break;
    case 1:
      checkName(text, false);
      break;
    case 2:
      checkMessageId(text);
      break;
    case 3:
      checkHeaders(text);
      break;
    case 4:
      checkQuoted(text);
      break;
    case 5:
      checkSettings(text);
      break;
    default: {
      auto parsed = daemon::parseStorageSize(text);
      if (parsed.ok()) {
        check(parsed.value() == 0 || parsed.value() >= daemon::kMinStorageBytes);
      } else {
        check(!parsed.status().message().empty());
      }
      break;
    }
  }
  return 0;
}
