#pragma once

// Byte encodings used by the CLI's output: UTF-8 validation and base64 (RFC 4648, with
// padding), for payloads and keys that are not text.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::cli {

// True when `bytes` is well-formed UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF). NUL and other control characters are valid UTF-8.
bool isValidUtf8(std::string_view bytes);

std::string base64Encode(std::string_view bytes);
// Decodes padded base64; nullopt on any character outside the alphabet or a bad length.
std::optional<std::string> base64Decode(std::string_view text);
// RFC 3339 in UTC with milliseconds: `2024-05-01T10:00:00.123Z`.
std::string formatTimestamp(int64_t unixMs);

}  // namespace sluice::cli
