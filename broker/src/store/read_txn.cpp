#include "store/store.h"

#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"

namespace sluice::store {
namespace {

// The first retained message of `topic` with offset >= from, positioned in `cursor`.
std::optional<Offset> seekMessage(Cursor& cursor, TopicId topic, Offset from) {
  if (!cursor.seek(keys::message(topic, from))) return std::nullopt;
  auto key = keys::parseMessage(cursor.key());
  if (!key || key->topic != topic) return std::nullopt;
  return key->offset;
}

}  // namespace

ReadTxn::ReadTxn(const Env& env) : env_(env) {
  int rc = mdb_txn_begin(env.raw(), nullptr, MDB_RDONLY, &txn_);
  if (rc != 0) {
    // Only MDB_READERS_FULL or a broken environment get here; neither can be answered.
    storeLog()->critical("cannot begin read transaction err={}", mdb_strerror(rc));
    std::abort();
  }
}

ReadTxn::~ReadTxn() {
  mdb_txn_abort(txn_);
}

std::optional<TopicRecord> ReadTxn::topic(std::string_view name) const {
  std::string_view value;
  if (!getValue(txn_, env_.topics, name, &value)) return std::nullopt;
  return codec::decodeTopic(name, value);
}

std::vector<TopicRecord> ReadTxn::topics() const {
  std::vector<TopicRecord> out;
  Cursor cursor(txn_, env_.topics);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    out.push_back(codec::decodeTopic(cursor.key(), cursor.value()));
  }
  return out;
}

Snapshot ReadTxn::snapshot() const {
  Snapshot out;
  out.topics = topics();
  {
    Cursor cursor(txn_, env_.groups);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      auto key = keys::parseGroup(cursor.key());
      if (!key) continue;  // Env::check reports malformed keys.
      out.groups.push_back(codec::decodeGroup(key->topic, key->name, cursor.value()));
    }
  }
  {
    Cursor cursor(txn_, env_.pending);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      auto key = keys::parsePending(cursor.key());
      if (!key) continue;
      out.pending.push_back(
          codec::decodePending(key->topic, key->group, key->offset, cursor.value()));
    }
  }
  return out;
}

std::vector<StoredMessageData> ReadTxn::readMessages(TopicId topic, Offset from, size_t maxCount,
                                                     size_t maxBytes) const {
  std::vector<StoredMessageData> out;
  if (maxCount == 0) return out;
  Cursor cursor(txn_, env_.messages);
  size_t bytes = 0;
  for (auto offset = seekMessage(cursor, topic, from); offset;) {
    StoredMessageData message = codec::decodeMessage(*offset, cursor.value());
    size_t size = message.data.payload.size();
    // The first message is returned even when it alone exceeds maxBytes.
    if (!out.empty() && bytes + size > maxBytes) break;
    bytes += size;
    out.push_back(std::move(message));
    if (out.size() >= maxCount || bytes >= maxBytes) break;
    if (!cursor.next()) break;
    auto key = keys::parseMessage(cursor.key());
    if (!key || key->topic != topic) break;
    offset = key->offset;
  }
  return out;
}

std::optional<StoredMessageData> ReadTxn::readMessage(TopicId topic, Offset offset) const {
  std::string_view value;
  if (!getValue(txn_, env_.messages, keys::message(topic, offset), &value)) return std::nullopt;
  return codec::decodeMessage(offset, value);
}

Offset ReadTxn::offsetAtTime(const TopicRecord& topic, int64_t unixMs) const {
  Cursor cursor(txn_, env_.messages);
  // reached(o): the first retained message at or after o has timestamp >= unixMs (or there is
  // none). It is monotone in o because timestamps never decrease, so binary-search the
  // smallest o in [firstOffset, nextOffset] where it holds. SET_RANGE skips retention gaps.
  auto reached = [&](Offset o) {
    auto found = seekMessage(cursor, topic.id, o);
    if (!found || *found >= topic.nextOffset) return true;
    return codec::decodeMessageMeta(cursor.value()).timestampMs >= unixMs;
  };
  Offset lo = topic.firstOffset;
  Offset hi = topic.nextOffset;
  while (lo < hi) {
    Offset mid = lo + (hi - lo) / 2;
    if (reached(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  auto found = seekMessage(cursor, topic.id, lo);
  if (!found || *found >= topic.nextOffset) return topic.nextOffset;
  return *found;
}

std::optional<int64_t> ReadTxn::timestampAtOrAfter(TopicId topic, Offset from) const {
  Cursor cursor(txn_, env_.messages);
  auto found = seekMessage(cursor, topic, from);
  if (!found) return std::nullopt;
  return codec::decodeMessageMeta(cursor.value()).timestampMs;
}

}  // namespace sluice::store
