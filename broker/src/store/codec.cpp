#include "store/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>

#include <algorithm>
#include <cstring>

#include "sluice/schemas/records.capnp.h"

namespace sluice::store::codec {
namespace {

kj::ArrayPtr<const kj::byte> asBytes(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string_view asView(capnp::Data::Reader data) {
  return std::string_view(reinterpret_cast<const char*>(data.begin()), data.size());
}

// Keeps embedded NULs, unlike cStr().
std::string asString(capnp::Text::Reader text) {
  return std::string(text.begin(), text.size());
}

}  // namespace

void setTexts(capnp::List<capnp::Text>::Builder out, const std::vector<std::string>& texts) {
  for (unsigned i = 0; i < texts.size(); ++i)
    out.set(i, capnp::Text::Reader(texts[i].data(), texts[i].size()));
}

std::vector<std::string> getTexts(capnp::List<capnp::Text>::Reader in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (auto text : in)
    out.push_back(asString(text));
  return out;
}

namespace {

constexpr size_t kScratchWords = 8192;  // 64 KiB, past any LMDB page size.

// Runs `body` on the root of the flat capnp message in `value`.
template <typename T, typename Body>
auto withRoot(std::string_view value, Body&& body) {
  KJ_REQUIRE(value.size() % sizeof(capnp::word) == 0 && !value.empty(),
             "stored record size is not a positive multiple of 8", value.size());
  size_t words = value.size() / sizeof(capnp::word);
  // Values on overflow pages are aligned and read in place; the others (those that fit in a
  // page) are copied, into one buffer per thread unless a body being run reads another record
  // meanwhile.
  thread_local kj::Array<capnp::word> scratch;
  thread_local bool scratchInUse = false;
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> aligned;
  bool usesScratch = false;
  if (reinterpret_cast<uintptr_t>(value.data()) % alignof(capnp::word) == 0) {
    aligned = kj::arrayPtr(reinterpret_cast<const capnp::word*>(value.data()), words);
  } else if (!scratchInUse && words <= kScratchWords) {
    if (scratch.size() < words) scratch = kj::heapArray<capnp::word>(words);
    std::memcpy(scratch.begin(), value.data(), value.size());
    aligned = scratch.slice(0, words);
    scratchInUse = usesScratch = true;
  } else {
    copy = kj::heapArray<capnp::word>(words);
    std::memcpy(copy.begin(), value.data(), value.size());
    aligned = copy;
  }
  KJ_DEFER(if (usesScratch) scratchInUse = false);
  capnp::ReaderOptions options;
  // A record is read once; allow traversing all of it, however large.
  options.traversalLimitInWords = std::max<uint64_t>(words * 2, 1u << 20);
  capnp::FlatArrayMessageReader reader(aligned, options);
  return body(reader.getRoot<T>());
}

}  // namespace

void setSettings(records::StoredSettings::Builder out, const TopicConfig& s) {
  out.setMaxAgeMs(s.maxAgeMs);
  out.setMaxBytes(s.maxBytes);
  out.setMaxMessages(s.maxMessages);
  out.setMaxMessageSize(s.maxMessageSize);
  out.setWorkQueue(s.workQueue);
  out.setMaxDeliveries(s.maxDeliveries);
  // Sized, like every text here: a std::string would go through c_str() and stop at a NUL.
  out.setDeadLetterTopic(capnp::Text::Reader(s.deadLetterTopic.data(), s.deadLetterTopic.size()));
  out.setDedupWindowMs(s.dedupWindowMs);
  out.setDefaultTtlMs(s.defaultTtlMs);
  out.setDeadLetterExpired(s.deadLetterExpired);
  if (!s.subjects.empty())
    setTexts(out.initSubjects(static_cast<unsigned>(s.subjects.size())), s.subjects);
}

TopicConfig getSettings(records::StoredSettings::Reader in) {
  TopicConfig s;
  s.maxAgeMs = in.getMaxAgeMs();
  s.maxBytes = in.getMaxBytes();
  s.maxMessages = in.getMaxMessages();
  s.maxMessageSize = in.getMaxMessageSize();
  s.workQueue = in.getWorkQueue();
  s.maxDeliveries = in.getMaxDeliveries();
  s.deadLetterTopic = asString(in.getDeadLetterTopic());
  s.dedupWindowMs = in.getDedupWindowMs();
  s.defaultTtlMs = in.getDefaultTtlMs();
  s.deadLetterExpired = in.getDeadLetterExpired();
  s.subjects = getTexts(in.getSubjects());
  return s;
}

kj::Array<capnp::word> encodeTopic(const TopicRecord& topic) {
  capnp::MallocMessageBuilder message(256);
  auto out = message.initRoot<records::StoredTopic>();
  out.setId(topic.id);
  setSettings(out.initSettings(), topic.settings);
  out.setNextOffset(topic.nextOffset);
  out.setFirstOffset(topic.firstOffset);
  out.setMessages(topic.messages);
  out.setBytes(topic.bytes);
  out.setCreatedMs(topic.createdMs);
  out.setLastTimestampMs(topic.lastTimestampMs);
  return capnp::messageToFlatArray(message);
}

TopicRecord decodeTopic(std::string_view name, std::string_view value) {
  return withRoot<records::StoredTopic>(value, [&](records::StoredTopic::Reader in) {
    TopicRecord topic;
    topic.name = std::string(name);
    topic.id = in.getId();
    topic.settings = getSettings(in.getSettings());
    topic.nextOffset = in.getNextOffset();
    topic.firstOffset = in.getFirstOffset();
    topic.messages = in.getMessages();
    topic.bytes = in.getBytes();
    topic.createdMs = in.getCreatedMs();
    topic.lastTimestampMs = in.getLastTimestampMs();
    return topic;
  });
}

namespace {

// Fills a builder with the stored form of `message` (shared by both encoders).
void buildMessage(capnp::MessageBuilder& builder, int64_t timestampMs, const MessageData& message) {
  auto out = builder.initRoot<records::StoredMessage>();
  out.setTimestampMs(timestampMs);
  if (message.key) {
    out.setHasKey(true);
    out.setKey(asBytes(*message.key));
  }
  if (!message.headers.empty()) {
    auto headers = out.initHeaders(message.headers.size());
    for (size_t i = 0; i < message.headers.size(); ++i) {
      const auto& [k, v] = message.headers[i];
      headers[i].setKey(capnp::Text::Reader(k.data(), k.size()));
      headers[i].setValue(capnp::Text::Reader(v.data(), v.size()));
    }
  }
  out.setPayload(asBytes(message.payload));
  if (!message.id.empty()) out.setId(capnp::Text::Reader(message.id.data(), message.id.size()));
  out.setDelayMs(storedDelayMs(timestampMs, message.deliverAtMs));
  out.setTtlMs(message.ttlMs);
  if (!message.subject.empty())
    out.setSubject(capnp::Text::Reader(message.subject.data(), message.subject.size()));
}

}  // namespace

kj::Array<capnp::word> encodeMessage(int64_t timestampMs, const MessageData& message) {
  // One segment sized for the payload avoids a second allocation for big messages.
  capnp::MallocMessageBuilder builder(message.accountedBytes() / sizeof(capnp::word) + 64);
  buildMessage(builder, timestampMs, message);
  return capnp::messageToFlatArray(builder);
}

size_t encodeMessageInto(int64_t timestampMs, const MessageData& message,
                         const std::function<kj::byte*(size_t bytes)>& reserve) {
  // MallocMessageBuilder takes a zeroed first segment and zeroes what it used on destruction,
  // so one buffer per thread serves every message; it grows to the largest message seen.
  thread_local kj::Array<capnp::word> scratch;
  size_t words = message.accountedBytes() / sizeof(capnp::word) + 16 * message.headers.size() +
                 (message.id.size() + message.subject.size()) / sizeof(capnp::word) + 64;
  if (scratch.size() < words) {
    scratch = kj::heapArray<capnp::word>(words);
    std::memset(scratch.begin(), 0, scratch.asBytes().size());
  }
  capnp::MallocMessageBuilder builder(scratch);
  buildMessage(builder, timestampMs, message);
  size_t bytes = capnp::computeSerializedSizeInWords(builder) * sizeof(capnp::word);
  kj::byte* dest = reserve(bytes);
  if (dest != nullptr) {
    kj::ArrayOutputStream stream(kj::arrayPtr(dest, bytes));
    capnp::writeMessage(stream, builder);
  }
  return bytes;
}

namespace {

MessageHead headOf(Offset offset, records::StoredMessage::Reader in) {
  MessageHead head;
  head.offset = offset;
  int64_t timestampMs = in.getTimestampMs();
  head.timestampMs = timestampMs;
  if (in.getHasKey()) head.key = std::string(asView(in.getKey()));
  head.deliverAtMs = deliverAtOf(timestampMs, in.getDelayMs());
  head.expiresAtMs = expiresAtOf(timestampMs, head.deliverAtMs, in.getTtlMs());
  head.payloadBytes = in.getPayload().size();
  auto subject = in.getSubject();
  head.subject = std::string_view(subject.begin(), subject.size());
  return head;
}

StoredMessageData wholeOf(Offset offset, records::StoredMessage::Reader in,
                          std::optional<std::string> key) {
  StoredMessageData out;
  out.offset = offset;
  out.timestampMs = in.getTimestampMs();
  out.data.key = std::move(key);
  for (auto header : in.getHeaders()) {
    out.data.headers.emplace_back(asString(header.getKey()), asString(header.getValue()));
  }
  out.data.payload = std::string(asView(in.getPayload()));
  out.data.id = asString(in.getId());
  out.data.deliverAtMs = deliverAtOf(out.timestampMs, in.getDelayMs());
  out.data.ttlMs = in.getTtlMs();
  out.data.subject = asString(in.getSubject());
  return out;
}

std::optional<std::string> keyOf(records::StoredMessage::Reader in) {
  if (!in.getHasKey()) return std::nullopt;
  return std::string(asView(in.getKey()));
}

}  // namespace

StoredMessageData decodeMessage(Offset offset, std::string_view value) {
  return withRoot<records::StoredMessage>(
      value, [&](records::StoredMessage::Reader in) { return wholeOf(offset, in, keyOf(in)); });
}

MessageHead decodeMessageHead(Offset offset, std::string_view value) {
  return withRoot<records::StoredMessage>(
      value, [&](records::StoredMessage::Reader in) { return headOf(offset, in); });
}

std::optional<StoredMessageData> decodeMessageIf(
    Offset offset, std::string_view value, const std::function<bool(const MessageHead&)>& whole) {
  return withRoot<records::StoredMessage>(
      value, [&](records::StoredMessage::Reader in) -> std::optional<StoredMessageData> {
        MessageHead head = headOf(offset, in);
        if (!whole(head)) return std::nullopt;
        return wholeOf(offset, in, std::move(head.key));
      });
}

MessageMeta decodeMessageMeta(std::string_view value) {
  return withRoot<records::StoredMessage>(value, [](records::StoredMessage::Reader in) {
    MessageMeta meta;
    meta.timestampMs = in.getTimestampMs();
    meta.expiresAtMs = expiresAtOf(meta.timestampMs, deliverAtOf(meta.timestampMs, in.getDelayMs()),
                                   in.getTtlMs());
    meta.accountedBytes = in.getPayload().size() + (in.getHasKey() ? in.getKey().size() : 0);
    for (auto header : in.getHeaders()) {
      meta.accountedBytes += header.getKey().size() + header.getValue().size();
    }
    return meta;
  });
}

void setGroup(records::StoredGroup::Builder out, const GroupRecord& group) {
  out.setPosition(group.position);
  out.setCreatedMs(group.createdMs);
  out.setRedelivered(group.redelivered);
  out.setDeadLettered(group.deadLettered);
  out.setKeyOrdered(group.keyOrdered);
  if (!group.filter.empty())
    setTexts(out.initFilter(static_cast<unsigned>(group.filter.size())), group.filter);
}

kj::Array<capnp::word> encodeGroup(const GroupRecord& group) {
  capnp::MallocMessageBuilder message(32);
  auto out = message.initRoot<records::StoredGroup>();
  setGroup(out, group);
  out.setPending(group.pending);
  out.setScheduled(group.scheduled);
  return capnp::messageToFlatArray(message);
}

GroupRecord decodeGroup(TopicId topic, std::string_view name, std::string_view value) {
  return withRoot<records::StoredGroup>(value, [&](records::StoredGroup::Reader in) {
    GroupRecord group;
    group.topicId = topic;
    group.name = std::string(name);
    group.position = in.getPosition();
    group.createdMs = in.getCreatedMs();
    group.redelivered = in.getRedelivered();
    group.deadLettered = in.getDeadLettered();
    group.pending = in.getPending();
    group.keyOrdered = in.getKeyOrdered();
    group.scheduled = in.getScheduled();
    group.filter = getTexts(in.getFilter());
    return group;
  });
}

kj::Array<capnp::word> encodePending(const PendingRecord& pending) {
  capnp::MallocMessageBuilder message(16);
  auto out = message.initRoot<records::StoredPending>();
  out.setDeliveries(pending.deliveries);
  out.setVisibleAtMs(pending.visibleAtMs);
  out.setCause(pending.cause);
  return capnp::messageToFlatArray(message);
}

PendingRecord decodePending(TopicId topic, std::string_view group, Offset offset,
                            std::string_view value) {
  return withRoot<records::StoredPending>(value, [&](records::StoredPending::Reader in) {
    PendingRecord pending;
    pending.topicId = topic;
    pending.group = std::string(group);
    pending.offset = offset;
    pending.deliveries = in.getDeliveries();
    pending.visibleAtMs = in.getVisibleAtMs();
    pending.cause = in.getCause();
    return pending;
  });
}

kj::Array<capnp::word> encodeDedup(const DedupEntry& entry) {
  capnp::MallocMessageBuilder message(16);
  auto out = message.initRoot<records::StoredDedup>();
  out.setOffset(entry.offset);
  out.setExpiresMs(entry.expiresMs);
  return capnp::messageToFlatArray(message);
}

DedupEntry decodeDedup(std::string_view value) {
  return withRoot<records::StoredDedup>(value, [](records::StoredDedup::Reader in) {
    return DedupEntry{in.getOffset(), in.getExpiresMs()};
  });
}

void toRecord(const core::TxnEntry& entry, records::StoredTxn::Builder out) {
  out.setFingerprint(capnp::Data::Reader(
      reinterpret_cast<const capnp::byte*>(entry.fingerprint.data()), entry.fingerprint.size()));
  out.setExpiresMs(entry.expiresMs);
  size_t total = 0;
  auto counts = out.initCounts(static_cast<unsigned>(entry.outputs.size()));
  for (unsigned i = 0; i < entry.outputs.size(); ++i) {
    counts.set(i, static_cast<uint32_t>(entry.outputs[i].size()));
    total += entry.outputs[i].size();
  }
  auto offsets = out.initOffsets(static_cast<unsigned>(total));
  auto duplicates = out.initDuplicates(static_cast<unsigned>(total));
  unsigned k = 0;
  for (const auto& acks : entry.outputs) {
    for (const PublishAckData& ack : acks) {
      offsets.set(k, ack.offset);
      duplicates.set(k++, ack.duplicate);
    }
  }
}

core::TxnEntry fromRecord(records::StoredTxn::Reader in) {
  core::TxnEntry entry;
  auto fingerprint = in.getFingerprint();
  entry.fingerprint.assign(reinterpret_cast<const char*>(fingerprint.begin()), fingerprint.size());
  entry.expiresMs = in.getExpiresMs();
  auto offsets = in.getOffsets();
  auto duplicates = in.getDuplicates();
  KJ_REQUIRE(offsets.size() == duplicates.size(), "transaction record: answers of unequal length");
  unsigned k = 0;
  for (uint32_t count : in.getCounts()) {
    KJ_REQUIRE(count <= offsets.size() - k, "transaction record: counts beyond its answers");
    std::vector<PublishAckData> acks;
    acks.reserve(count);
    for (uint32_t i = 0; i < count; ++i, ++k)
      acks.push_back({offsets[k], duplicates[k]});
    entry.outputs.push_back(std::move(acks));
  }
  KJ_REQUIRE(k == offsets.size(), "transaction record: answers beyond its counts");
  return entry;
}

kj::Array<capnp::word> encodeTxn(const core::TxnEntry& entry) {
  capnp::MallocMessageBuilder message;
  toRecord(entry, message.initRoot<records::StoredTxn>());
  return capnp::messageToFlatArray(message);
}

core::TxnEntry decodeTxn(std::string_view value) {
  return withRoot<records::StoredTxn>(value,
                                      [](records::StoredTxn::Reader in) { return fromRecord(in); });
}

namespace {

void setRules(capnp::List<records::StoredRule>::Builder out, const std::vector<AuthRule>& rules) {
  for (unsigned i = 0; i < rules.size(); ++i) {
    out[i].setAllow(rules[i].allow);
    out[i].setActions(rules[i].actions);
    out[i].setPattern(kj::StringPtr(rules[i].pattern.c_str(), rules[i].pattern.size()));
  }
}

std::vector<AuthRule> getRules(capnp::List<records::StoredRule>::Reader in) {
  std::vector<AuthRule> rules;
  rules.reserve(in.size());
  for (auto rule : in) {
    auto pattern = rule.getPattern();
    rules.push_back({rule.getAllow(), rule.getActions(), asString(pattern)});
  }
  return rules;
}

}  // namespace

void toRecord(const PrincipalRecord& principal, records::StoredPrincipal::Builder out) {
  out.setName(kj::StringPtr(principal.name.c_str(), principal.name.size()));
  setRules(out.initRules(static_cast<unsigned>(principal.rules.size())), principal.rules);
  out.setCreatedMs(principal.createdMs);
}

PrincipalRecord fromRecord(records::StoredPrincipal::Reader in) {
  return {asString(in.getName()), getRules(in.getRules()), in.getCreatedMs()};
}

void toRecord(const CredentialRecord& credential, records::StoredCredential::Builder out) {
  out.setId(credential.id);
  out.setPrincipal(kj::StringPtr(credential.principal.c_str(), credential.principal.size()));
  out.setIssuer(credential.issuer);
  out.setScoped(credential.scoped);
  setRules(out.initScope(static_cast<unsigned>(credential.scope.size())), credential.scope);
  out.setExpiresAtMs(credential.expiresAtMs);
  out.setCreatedMs(credential.createdMs);
  out.setNote(kj::StringPtr(credential.note.c_str(), credential.note.size()));
  out.setSecretHash(kj::arrayPtr(reinterpret_cast<const kj::byte*>(credential.secretHash.data()),
                                 credential.secretHash.size()));
}

CredentialRecord fromRecord(records::StoredCredential::Reader in) {
  CredentialRecord credential;
  credential.id = in.getId();
  credential.principal = asString(in.getPrincipal());
  credential.issuer = in.getIssuer();
  credential.scoped = in.getScoped();
  credential.scope = getRules(in.getScope());
  credential.expiresAtMs = in.getExpiresAtMs();
  credential.createdMs = in.getCreatedMs();
  credential.note = asString(in.getNote());
  auto hash = in.getSecretHash();
  credential.secretHash.assign(reinterpret_cast<const char*>(hash.begin()), hash.size());
  return credential;
}

kj::Array<capnp::word> encodePrincipal(const PrincipalRecord& principal) {
  capnp::MallocMessageBuilder message;
  toRecord(principal, message.initRoot<records::StoredPrincipal>());
  return capnp::messageToFlatArray(message);
}

PrincipalRecord decodePrincipal(std::string_view value) {
  return withRoot<records::StoredPrincipal>(
      value, [](records::StoredPrincipal::Reader in) { return fromRecord(in); });
}

kj::Array<capnp::word> encodeCredential(const CredentialRecord& credential) {
  capnp::MallocMessageBuilder message;
  toRecord(credential, message.initRoot<records::StoredCredential>());
  return capnp::messageToFlatArray(message);
}

CredentialRecord decodeCredential(std::string_view value) {
  return withRoot<records::StoredCredential>(
      value, [](records::StoredCredential::Reader in) { return fromRecord(in); });
}

}  // namespace sluice::store::codec
