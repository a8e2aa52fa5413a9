#include "store/store.h"

#include <algorithm>

#include "store/batch_codec.h"
#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"
#include "store/write_log.h"

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

std::optional<GroupRecord> ReadTxn::group(TopicId topic, std::string_view name) const {
  std::string_view value;
  if (!getValue(txn_, env_.groups, keys::group(topic, name), &value)) return std::nullopt;
  return codec::decodeGroup(topic, name, value);
}

core::StoredState ReadTxn::load() const {
  core::StoredState out;
  out.topics = topics();
  std::string_view stored;
  if (getValue(txn_, env_.meta, keys::kNextTopicId, &stored) && stored.size() == 4) {
    out.nextTopicId = keys::readU32(stored.data());
  }
  out.lastSeq = lastSeq();
  Cursor cursor(txn_, env_.groups);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    auto key = keys::parseGroup(cursor.key());
    if (!key) continue;  // Env::check reports malformed keys.
    core::StoredGroupState group;
    group.record = codec::decodeGroup(key->topic, key->name, cursor.value());
    // Held entries were held by consumers when the broker stopped: count them (they are due
    // now; as many as were in flight). Beyond them, the next deadline is one seek.
    Cursor held(txn_, env_.held);
    std::string prefix = keys::pendingPrefix(key->topic, key->name);
    for (bool h = held.seek(prefix); h && startsWith(held.key(), prefix); h = held.next())
      ++group.heldAtStop;
    group.nextDueMs = nextDueMs(key->topic, key->name, 1);
    if (group.record.keyOrdered) group.keyed = keyedEntries(key->topic, key->name);
    out.groups.push_back(std::move(group));
  }
  if (getValue(txn_, env_.meta, keys::kNextCredentialId, &stored) && stored.size() == 8) {
    out.nextCredentialId = keys::readU64(stored.data());
  }
  Cursor auth(txn_, env_.auth);
  for (bool ok = auth.first(); ok; ok = auth.next()) {
    std::string_view key = auth.key();
    if (key.empty()) continue;  // Env::check reports malformed keys.
    if (key[0] == keys::kPrincipalTag) {
      out.principals.push_back(codec::decodePrincipal(auth.value()));
    } else if (key[0] == keys::kCredentialTag) {
      out.credentials.push_back(codec::decodeCredential(auth.value()));
    }
  }
  return out;
}

std::vector<core::KeyedEntry> ReadTxn::keyedEntries(TopicId topic, const std::string& group) const {
  // Every pending entry (held or waiting) whose message has a key: as many as the group had
  // in flight or parked, each one message read.
  std::vector<core::KeyedEntry> out;
  std::string prefix = keys::pendingPrefix(topic, group);
  for (MDB_dbi db : {env_.held, env_.pending}) {
    Cursor cursor(txn_, db);
    for (bool ok = cursor.seek(prefix); ok && startsWith(cursor.key(), prefix);
         ok = cursor.next()) {
      auto parsed = keys::parsePending(cursor.key());
      if (!parsed) continue;  // Env::check reports malformed keys.
      std::string_view value;
      if (!getValue(txn_, env_.messages, keys::message(topic, parsed->offset), &value)) continue;
      auto meta = codec::decodeMessageHead(parsed->offset, value);
      if (!meta.key) continue;
      bool parked =
          db == env_.pending &&
          codec::decodePending(topic, group, parsed->offset, cursor.value()).visibleAtMs ==
              core::kParkedMs;
      out.push_back(
          core::KeyedEntry{parsed->offset, std::move(*meta.key), parked, meta.deliverAtMs});
    }
  }
  std::sort(out.begin(), out.end(), [](const core::KeyedEntry& a, const core::KeyedEntry& b) {
    return a.offset < b.offset;
  });
  return out;
}

uint64_t ReadTxn::lastSeq() const {
  return lastLoggedSeq(txn_, env_);
}

ReadTxn::EpochMark ReadTxn::leaderEpoch() const {
  EpochMark mark;
  std::string_view stored;
  if (getValue(txn_, env_.meta, keys::kLeaderEpoch, &stored) && stored.size() >= 8) {
    mark.epoch = keys::readU64(stored.data());
    mark.leader = std::string(stored.substr(8));
  }
  if (getValue(txn_, env_.meta, keys::kClusterId, &stored)) mark.cluster = std::string(stored);
  return mark;
}

Result<std::vector<kj::Array<capnp::word>>> ReadTxn::shipLog(uint64_t from, size_t maxBytes) const {
  constexpr size_t kChunk = 64;
  std::vector<kj::Array<capnp::word>> out;
  size_t bytes = 0;
  while (bytes < maxBytes) {
    auto batches = readLog(from, kChunk);
    if (!batches.ok()) return batches.status();
    for (const core::LoggedBatch& logged : batches.value()) {
      auto encoded = codec::encodeBatch(logged.seq, logged.batch, codec::BatchForm::kShipped,
                                        logged.loggedAtMs);
      bytes += encoded.size() * sizeof(capnp::word);
      out.push_back(kj::mv(encoded));
      if (bytes >= maxBytes) break;
    }
    if (batches.value().size() < kChunk) break;
    from += batches.value().size();
  }
  return out;
}

Result<core::LoggedBatch> decodeShipped(std::string_view bytes) {
  std::vector<codec::StoredAppendRef> refs;
  auto decoded = codec::decodeBatch(bytes, &refs);
  if (!decoded.ok()) return decoded.status();
  if (!refs.empty())
    return Status(Code::kInvalidArgument, "a shipped batch left out message bodies");
  return decoded;
}

Result<std::vector<core::LoggedBatch>> ReadTxn::readLog(uint64_t from, size_t max) const {
  try {
    return readLogRange(txn_, env_, from, max);
  } catch (const LmdbError& e) {
    return e.status();
  } catch (const kj::Exception& e) {
    return Status(Code::kInvalidArgument,
                  std::string("write log: corrupt message body: ") + e.getDescription().cStr());
  }
}

std::vector<StoredMessageData> ReadTxn::scanMessages(
    TopicId topic, Offset from, size_t maxCount, size_t maxBytes,
    const std::function<core::Scan(const core::MessageHead&)>& decide) const {
  std::vector<StoredMessageData> out;
  if (maxCount == 0) return out;
  Cursor cursor(txn_, env_.messages);
  size_t bytes = 0;
  for (auto offset = seekMessage(cursor, topic, from); offset;) {
    bool stop = false;
    auto message =
        codec::decodeMessageIf(*offset, cursor.value(), [&](const core::MessageHead& head) {
          if (!out.empty() && bytes + head.payloadBytes > maxBytes) {
            stop = true;
            return false;
          }
          core::Scan scan = decide(head);
          stop = scan == core::Scan::kStop;
          return scan == core::Scan::kTake;
        });
    if (message) {
      bytes += message->data.payload.size();
      out.push_back(std::move(*message));
    }
    if (stop || out.size() >= maxCount || bytes >= maxBytes) break;
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

std::optional<core::MessageMeta> ReadTxn::messageMeta(TopicId topic, Offset offset) const {
  std::string_view value;
  if (!getValue(txn_, env_.messages, keys::message(topic, offset), &value)) return std::nullopt;
  return codec::decodeMessageMeta(value);
}

Offset ReadTxn::offsetAtTime(TopicId topic, Offset first, Offset next, int64_t unixMs) const {
  Cursor cursor(txn_, env_.messages);
  // reached(o): the first retained message at or after o has timestamp >= unixMs (or there is
  // none). It is monotone in o because timestamps never decrease, so binary-search the
  // smallest o in [firstOffset, nextOffset] where it holds. SET_RANGE skips retention gaps.
  auto reached = [&](Offset o) {
    auto found = seekMessage(cursor, topic, o);
    if (!found || *found >= next) return true;
    return codec::decodeMessageMeta(cursor.value()).timestampMs >= unixMs;
  };
  Offset lo = first;
  Offset hi = next;
  while (lo < hi) {
    Offset mid = lo + (hi - lo) / 2;
    if (reached(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  auto found = seekMessage(cursor, topic, lo);
  if (!found || *found >= next) return next;
  return *found;
}

Offset ReadTxn::expiredUntil(TopicId topic, Offset first, Offset end, int64_t nowMs,
                             size_t maxCount) const {
  Cursor cursor(txn_, env_.messages);
  auto offset = seekMessage(cursor, topic, first);
  for (size_t read = 0; offset && *offset < end; ++read) {
    if (read == maxCount) return *offset;
    if (!expiredAt(codec::decodeMessageMeta(cursor.value()).expiresAtMs, nowMs)) return *offset;
    if (!cursor.next()) return end;
    auto key = keys::parseMessage(cursor.key());
    if (!key || key->topic != topic) return end;
    offset = key->offset;
  }
  return end;
}

std::optional<int64_t> ReadTxn::timestampAtOrAfter(TopicId topic, Offset from) const {
  Cursor cursor(txn_, env_.messages);
  auto found = seekMessage(cursor, topic, from);
  if (!found) return std::nullopt;
  return codec::decodeMessageMeta(cursor.value()).timestampMs;
}

std::optional<core::TxnEntry> ReadTxn::txn(std::string_view id) const {
  std::string_view value;
  if (!getValue(txn_, env_.txns, id, &value)) return std::nullopt;
  return codec::decodeTxn(value);
}

std::optional<core::DedupEntry> ReadTxn::dedup(TopicId topic, std::string_view id) const {
  std::string_view value;
  if (!getValue(txn_, env_.dedup, keys::dedup(topic, id), &value)) return std::nullopt;
  codec::DedupEntry entry = codec::decodeDedup(value);
  return core::DedupEntry{entry.offset, entry.expiresMs};
}

// Held entries count as due at 0, in offset order, ahead of every waiting entry.
std::vector<core::DueEntry> ReadTxn::due(TopicId topic, std::string_view group, int64_t fromMs,
                                         int64_t untilMs, size_t max,
                                         const std::function<bool(Offset)>& skip) const {
  std::vector<core::DueEntry> out;
  if (max == 0 || untilMs < fromMs) return out;
  std::string prefix = keys::pendingPrefix(topic, group);
  auto add = [&](const Cursor& cursor, Offset offset) {
    if (skip && skip(offset)) return;
    PendingRecord record = codec::decodePending(topic, group, offset, cursor.value());
    out.push_back(core::DueEntry{offset, record.deliveries, record.visibleAtMs,
                                 static_cast<core::RedeliveryCause>(record.cause)});
  };
  if (fromMs <= 0) {
    Cursor held(txn_, env_.held);
    for (bool ok = held.seek(prefix); ok && startsWith(held.key(), prefix) && out.size() < max;
         ok = held.next()) {
      auto key = keys::parsePending(held.key());
      if (!key) break;
      add(held, key->offset);
    }
  }
  Cursor cursor(txn_, env_.due);
  for (bool ok = cursor.seek(keys::due(topic, group, std::max<int64_t>(fromMs, 1), 0));
       ok && startsWith(cursor.key(), prefix) && out.size() < max; ok = cursor.next()) {
    auto key = keys::parseDue(cursor.key());
    if (!key || key->visibleAtMs > untilMs) break;
    add(cursor, key->offset);
  }
  return out;
}

std::optional<int64_t> ReadTxn::nextDueMs(TopicId topic, std::string_view group,
                                          int64_t fromMs) const {
  std::string prefix = keys::pendingPrefix(topic, group);
  if (fromMs <= 0) {
    Cursor held(txn_, env_.held);
    if (held.seek(prefix) && startsWith(held.key(), prefix)) return 0;
  }
  Cursor cursor(txn_, env_.due);
  if (!cursor.seek(keys::due(topic, group, std::max<int64_t>(fromMs, 1), 0))) return std::nullopt;
  if (!startsWith(cursor.key(), prefix)) return std::nullopt;
  auto key = keys::parseDue(cursor.key());
  if (!key) return std::nullopt;
  return key->visibleAtMs;
}

std::optional<Offset> ReadTxn::firstPending(TopicId topic, std::string_view group) const {
  std::string prefix = keys::pendingPrefix(topic, group);
  std::optional<Offset> first;
  for (MDB_dbi dbi : {env_.held, env_.pending}) {
    Cursor cursor(txn_, dbi);
    if (!cursor.seek(prefix) || !startsWith(cursor.key(), prefix)) continue;
    auto key = keys::parsePending(cursor.key());
    if (key && (!first || key->offset < *first)) first = key->offset;
  }
  return first;
}

std::optional<int64_t> ReadTxn::firstIdExpiryMs() const {
  std::optional<int64_t> first;
  auto consider = [&first](uint64_t expiresMs) {
    int64_t ms = static_cast<int64_t>(expiresMs);
    if (!first || ms < *first) first = ms;
  };
  Cursor dedup(txn_, env_.dedupExpiry);
  if (dedup.first()) {
    if (auto key = keys::parseDedupExpiry(dedup.key())) consider(key->expiresMs);
  }
  Cursor txns(txn_, env_.txnExpiry);
  if (txns.first()) {
    if (auto key = keys::parseTxnExpiry(txns.key())) consider(key->expiresMs);
  }
  return first;
}

}  // namespace sluice::store
