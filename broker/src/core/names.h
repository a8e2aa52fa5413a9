#pragma once

// Validation of client-supplied names and settings. Each problem is a message that states the
// rule and what was received; nullopt means valid. Thread: any.

#include <optional>
#include <string>
#include <string_view>

#include "common/records.h"

namespace sluice::core {

struct Limits;
struct RequestedSettings;

constexpr size_t kMaxNameLength = 200;
constexpr size_t kMaxMessageIdLength = 256;
constexpr size_t kMaxHeaderCount = 64;
constexpr size_t kMaxHeaderKeyLength = 256;

// Topic names: 1-200 characters of [A-Za-z0-9._-], dot-separated non-empty segments.
std::optional<std::string> validateTopicName(std::string_view name);
// Group names: 1-200 characters of [A-Za-z0-9._-].
std::optional<std::string> validateGroupName(std::string_view name);
// Message ids: at most 256 bytes of printable ASCII.
std::optional<std::string> validateMessageId(std::string_view id);
// Header keys: 1-256 bytes of printable ASCII without ':'; at most 64 headers.
std::optional<std::string> validateHeaders(const HeaderList& headers);
// The count part of validateHeaders, for checking a wire list before copying it.
std::optional<std::string> validateHeaderCount(size_t count);

// Applies defaults and checks ranges; `topic` is the name being created.
struct SettingsCheck {
  std::optional<std::string> problem;
  TopicConfig effective;
};
SettingsCheck checkSettings(std::string_view topic, const RequestedSettings& requested,
                            const Limits& limits);

// "\"name\"" quoted for messages, with non-printable bytes escaped and long input cut.
std::string quoted(std::string_view text);

}  // namespace sluice::core
