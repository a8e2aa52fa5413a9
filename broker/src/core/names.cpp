#include "core/names.h"

#include <algorithm>
#include <cstdio>

#include "core/broker.h"
#include "core/subjects.h"

namespace sluice::core {
namespace {

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::optional<std::string> validateName(std::string_view what, std::string_view name) {
  std::string rule = std::string(what) + " name must be 1-200 characters of [A-Za-z0-9._-]";
  if (name.empty()) return rule + ", got an empty name";
  if (name.size() > kMaxNameLength) {
    return rule + ", got " + std::to_string(name.size()) + " characters";
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!isNameChar(name[i])) {
      return rule + ", got " + quoted(name) + " with an invalid character at position " +
             std::to_string(i + 1);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string quoted(std::string_view text) {
  constexpr size_t kShown = 64;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kShown; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kShown) out += "...";
  return out + "\"";
}

std::optional<std::string> validateTopicName(std::string_view name) {
  if (auto problem = validateName("topic", name)) return problem;
  if (name.front() == '.' || name.back() == '.' || name.find("..") != std::string_view::npos) {
    return "topic name segments must be non-empty (no leading, trailing or double '.'), got " +
           quoted(name);
  }
  return std::nullopt;
}

std::optional<std::string> validateGroupName(std::string_view name) {
  return validateName("group", name);
}

std::optional<std::string> validateMessageId(std::string_view id) {
  if (id.size() > kMaxMessageIdLength) {
    return "message id must be at most 256 bytes, got " + std::to_string(id.size());
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return "message id must be printable ASCII without spaces, got " + quoted(id);
    }
  }
  return std::nullopt;
}

std::optional<std::string> validateHeaderCount(size_t count) {
  if (count > kMaxHeaderCount) {
    return "a message may carry at most 64 headers, got " + std::to_string(count);
  }
  return std::nullopt;
}

std::optional<std::string> validateHeaders(const HeaderList& headers) {
  if (auto problem = validateHeaderCount(headers.size())) return problem;
  for (const auto& [key, value] : headers) {
    if (key.empty() || key.size() > kMaxHeaderKeyLength) {
      return "header names must be 1-256 bytes, got " + std::to_string(key.size());
    }
    for (char c : key) {
      if (c < 0x21 || c > 0x7e || c == ':') {
        return "header names must be printable ASCII without spaces or ':', got " + quoted(key);
      }
    }
  }
  return std::nullopt;
}

SettingsCheck checkSettings(std::string_view topic, const RequestedSettings& requested,
                            const Limits& limits) {
  SettingsCheck check;
  TopicConfig& s = check.effective;
  s.maxAgeMs = requested.maxAgeMs;
  s.maxBytes = requested.maxBytes;
  s.maxMessages = requested.maxMessages;
  s.maxMessageSize =
      requested.maxMessageSize == 0 ? kDefaultMaxMessageSize : requested.maxMessageSize;
  s.workQueue = requested.workQueue;
  s.maxDeliveries = requested.maxDeliveries;
  s.deadLetterTopic = requested.deadLetterTopic;
  s.dedupWindowMs = requested.dedupWindowMs == 0 ? kDefaultDedupWindowMs : requested.dedupWindowMs;
  s.defaultTtlMs = static_cast<uint32_t>(std::min<uint64_t>(requested.defaultTtlMs, kMaxTtlMs));
  s.deadLetterExpired = requested.deadLetterExpired;
  s.subjects = requested.subjects;

  constexpr uint64_t kWeekMs = 7ull * 24 * 3600 * 1000;
  if (auto problem = validateSubjectPatterns(s.subjects, kMaxPatternsPerTopic)) {
    check.problem = *problem;
  } else if (s.maxMessageSize > limits.maxMessageSizeCap) {
    check.problem = "max message size must be at most " + std::to_string(limits.maxMessageSizeCap) +
                    " bytes, got " + std::to_string(s.maxMessageSize);
  } else if (s.dedupWindowMs > kWeekMs) {
    check.problem =
        "dedup window must be at most 7 days, got " + std::to_string(s.dedupWindowMs) + " ms";
  } else if (requested.defaultTtlMs > kMaxTtlMs) {
    check.problem = "default time to live must be at most 30 days (" + std::to_string(kMaxTtlMs) +
                    " ms), got " + std::to_string(requested.defaultTtlMs) + " ms";
  } else if (s.deadLetterExpired && s.deadLetterTopic.empty()) {
    check.problem = "dead-lettering expired messages needs a dead-letter topic";
  } else if (s.maxBytes != 0 && s.maxBytes < s.maxMessageSize) {
    check.problem = "max bytes must be 0 (unlimited) or at least the max message size (" +
                    std::to_string(s.maxMessageSize) + "), got " + std::to_string(s.maxBytes);
  } else if (!s.deadLetterTopic.empty()) {
    if (auto problem = validateTopicName(s.deadLetterTopic)) {
      check.problem = "dead-letter " + *problem;
    } else if (s.deadLetterTopic == topic) {
      check.problem = "a topic cannot be its own dead-letter topic, got " + quoted(topic);
    } else if (s.maxDeliveries == 0 && !s.deadLetterExpired) {
      check.problem =
          "a dead-letter topic needs max deliveries > 0 or dead-lettering of expired messages "
          "to ever receive messages";
    }
  }
  return check;
}

}  // namespace sluice::core
