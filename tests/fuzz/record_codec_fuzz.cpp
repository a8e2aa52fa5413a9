// libFuzzer target: decoding stored records (broker/src/store/codec.h) from arbitrary bytes.
//
// The first byte picks the record kind; the rest is the LMDB value. A malformed value must end
// in a kj::Exception (the documented failure), never a crash, a sanitizer report or a hang.
// A value that decodes must encode and decode again to the same fields (round trip).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <kj/exception.h>

#include "fuzz_support.h"
#include "store/codec.h"

namespace {

using namespace sluice;
using namespace sluice::store;

std::string_view bytesOf(const kj::Array<capnp::word>& words) {
  return codec::bytesOf(words);
}

using fuzz::check;  // A round trip that differs: libFuzzer reports the input.

void roundTripMessage(std::string_view value) {
  StoredMessageData first = codec::decodeMessage(7, value);
  auto encoded = codec::encodeMessage(first.timestampMs, first.data);
  StoredMessageData second = codec::decodeMessage(7, bytesOf(encoded));
  check(second.offset == 7 && second.timestampMs == first.timestampMs);
  check(second.data.payload == first.data.payload && second.data.key == first.data.key);
  check(second.data.headers == first.data.headers && second.data.id == first.data.id);
  // The allocation-free encoder (MDB_RESERVE path) writes a record that reads back the same.
  std::string into;
  size_t written = codec::encodeMessageInto(first.timestampMs, first.data, [&](size_t bytes) {
    into.resize(bytes);
    return reinterpret_cast<kj::byte*>(into.data());
  });
  check(written == into.size());
  StoredMessageData third = codec::decodeMessage(7, into);
  check(third.timestampMs == first.timestampMs && third.data.payload == first.data.payload);
  check(third.data.key == first.data.key && third.data.headers == first.data.headers);
  check(third.data.id == first.data.id);
  codec::MessageMeta meta = codec::decodeMessageMeta(value);
  check(meta.timestampMs == first.timestampMs);
  check(meta.accountedBytes == first.data.accountedBytes());
}

void roundTripTopic(std::string_view value) {
  TopicRecord first = codec::decodeTopic("t", value);
  auto encoded = codec::encodeTopic(first);
  TopicRecord second = codec::decodeTopic("t", bytesOf(encoded));
  check(second.id == first.id && second.nextOffset == first.nextOffset);
  check(second.firstOffset == first.firstOffset && second.messages == first.messages);
  check(second.bytes == first.bytes && second.createdMs == first.createdMs);
  check(second.settings.deadLetterTopic == first.settings.deadLetterTopic);
  check(second.settings.maxMessageSize == first.settings.maxMessageSize);
}

void roundTripGroup(std::string_view value) {
  GroupRecord first = codec::decodeGroup(3, "g", value);
  auto encoded = codec::encodeGroup(first);
  GroupRecord second = codec::decodeGroup(3, "g", bytesOf(encoded));
  check(second.position == first.position && second.createdMs == first.createdMs);
  check(second.redelivered == first.redelivered && second.deadLettered == first.deadLettered);
  check(second.pending == first.pending);
}

void roundTripPending(std::string_view value) {
  PendingRecord first = codec::decodePending(3, "g", 9, value);
  auto encoded = codec::encodePending(first);
  PendingRecord second = codec::decodePending(3, "g", 9, bytesOf(encoded));
  check(second.deliveries == first.deliveries && second.visibleAtMs == first.visibleAtMs);
  check(second.cause == first.cause);
}

void roundTripDedup(std::string_view value) {
  codec::DedupEntry first = codec::decodeDedup(value);
  auto encoded = codec::encodeDedup(first);
  codec::DedupEntry second = codec::decodeDedup(bytesOf(encoded));
  check(second.offset == first.offset && second.expiresMs == first.expiresMs);
}

// Seeds: one well-formed record of each kind, prefixed with its selector byte.
void writeSeed(const std::string& dir, const std::string& name, char kind,
               const kj::Array<capnp::word>& record) {
  fuzz::writeSeed(dir, name, kind, bytesOf(record));
}

void writeSeeds(const std::string& dir) {
  MessageData plain;
  plain.payload = "hello";
  writeSeed(dir, "message_plain", 0, codec::encodeMessage(1700000000000, plain));
  MessageData full;
  full.payload = std::string(300, 'p');
  full.key = "customer-42";
  full.headers = {{"trace", "abc"}, {"empty", ""}};
  full.id = "order-7";
  writeSeed(dir, "message_full", 0, codec::encodeMessage(1700000000001, full));
  MessageData emptyKey;
  emptyKey.key = "";
  writeSeed(dir, "message_empty_key", 0, codec::encodeMessage(0, emptyKey));
  TopicRecord topic;
  topic.name = "orders";
  topic.id = 3;
  topic.settings.maxAgeMs = 60000;
  topic.settings.workQueue = true;
  topic.settings.maxDeliveries = 5;
  topic.settings.deadLetterTopic = "orders.dead";
  topic.nextOffset = 11;
  topic.firstOffset = 4;
  topic.messages = 7;
  topic.bytes = 700;
  writeSeed(dir, "topic", 1, codec::encodeTopic(topic));
  GroupRecord group;
  group.position = 9;
  group.createdMs = 1700000000000;
  group.redelivered = 2;
  group.pending = 4;
  writeSeed(dir, "group", 2, codec::encodeGroup(group));
  PendingRecord pending;
  pending.deliveries = 2;
  pending.visibleAtMs = 1700000000500;
  pending.cause = 1;
  writeSeed(dir, "pending", 3, codec::encodePending(pending));
  writeSeed(dir, "dedup", 4, codec::encodeDedup(codec::DedupEntry{5, 1700000120000}));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::writeSeedsIfAsked(writeSeeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view value(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 5) {
      case 0:
        roundTripMessage(value);
        break;
      case 1:
        roundTripTopic(value);
        break;
      case 2:
        roundTripGroup(value);
        break;
      case 3:
        roundTripPending(value);
        break;
      default:
        roundTripDedup(value);
        break;
    }
  } catch (const kj::Exception&) {
    // A malformed record: the documented outcome.
  }
  return 0;
}
