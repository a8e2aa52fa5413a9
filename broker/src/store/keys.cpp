#include "store/keys.h"

namespace sluice::store::keys {

void appendU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void appendU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t readU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint64_t readU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string u32(uint32_t v) {
  std::string out;
  appendU32(out, v);
  return out;
}

std::string topicPrefix(TopicId topic) {
  return u32(topic);
}

std::string message(TopicId topic, Offset offset) {
  std::string out;
  out.reserve(12);
  appendU32(out, topic);
  appendU64(out, offset);
  return out;
}

std::string group(TopicId topic, std::string_view name) {
  std::string out = u32(topic);
  out.append(name);
  return out;
}

std::string pendingPrefix(TopicId topic, std::string_view group) {
  std::string out = u32(topic);
  out.append(group);
  out.push_back('\0');
  return out;
}

std::string pending(TopicId topic, std::string_view group, Offset offset) {
  std::string out = pendingPrefix(topic, group);
  appendU64(out, offset);
  return out;
}

std::string duePrefix(TopicId topic, std::string_view group) {
  return pendingPrefix(topic, group);
}

std::string due(TopicId topic, std::string_view group, int64_t visibleAtMs, Offset offset) {
  std::string out = pendingPrefix(topic, group);
  appendU64(out, static_cast<uint64_t>(visibleAtMs < 0 ? 0 : visibleAtMs));
  appendU64(out, offset);
  return out;
}

std::string logEntry(uint64_t seq) {
  std::string out;
  appendU64(out, seq);
  return out;
}

std::string dedup(TopicId topic, std::string_view id) {
  std::string out = u32(topic);
  out.append(id);
  return out;
}

std::string dedupExpiry(uint64_t expiresMs, TopicId topic, std::string_view id) {
  std::string out;
  appendU64(out, expiresMs);
  appendU32(out, topic);
  out.append(id);
  return out;
}

std::string txnExpiry(uint64_t expiresMs, std::string_view id) {
  std::string out;
  appendU64(out, expiresMs);
  out.append(id);
  return out;
}

std::optional<MessageKey> parseMessage(std::string_view key) {
  if (key.size() != 12) return std::nullopt;
  return MessageKey{readU32(key.data()), readU64(key.data() + 4)};
}

std::optional<GroupKey> parseGroup(std::string_view key) {
  if (key.size() < 4) return std::nullopt;
  return GroupKey{readU32(key.data()), std::string(key.substr(4))};
}

std::optional<PendingKey> parsePending(std::string_view key) {
  // topicId(4) · group(>=0) · 0x00 · offset(8)
  if (key.size() < 4 + 1 + 8 || key[key.size() - 9] != '\0') return std::nullopt;
  std::string_view name = key.substr(4, key.size() - 4 - 9);
  if (name.find('\0') != std::string_view::npos) return std::nullopt;
  return PendingKey{readU32(key.data()), std::string(name), readU64(key.data() + key.size() - 8)};
}

std::optional<DueKey> parseDue(std::string_view key) {
  // topicId(4) · group(>=0) · 0x00 · visibleAtMs(8) · offset(8)
  if (key.size() < 4 + 1 + 16 || key[key.size() - 17] != '\0') return std::nullopt;
  std::string_view name = key.substr(4, key.size() - 4 - 17);
  if (name.find('\0') != std::string_view::npos) return std::nullopt;
  return DueKey{readU32(key.data()), std::string(name),
                static_cast<int64_t>(readU64(key.data() + key.size() - 16)),
                readU64(key.data() + key.size() - 8)};
}

std::optional<DedupKey> parseDedup(std::string_view key) {
  if (key.size() < 4) return std::nullopt;
  return DedupKey{readU32(key.data()), std::string(key.substr(4))};
}

std::optional<DedupExpiryKey> parseDedupExpiry(std::string_view key) {
  if (key.size() < 12) return std::nullopt;
  return DedupExpiryKey{readU64(key.data()), readU32(key.data() + 8), std::string(key.substr(12))};
}

std::optional<TxnExpiryKey> parseTxnExpiry(std::string_view key) {
  if (key.size() < 8) return std::nullopt;
  return TxnExpiryKey{readU64(key.data()), std::string(key.substr(8))};
}

std::string principal(std::string_view name) {
  std::string key(1, kPrincipalTag);
  key.append(name);
  return key;
}

std::string credential(uint64_t id) {
  std::string key(1, kCredentialTag);
  appendU64(key, id);
  return key;
}

}  // namespace sluice::store::keys
