#include "store/write_log.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "store/batch_codec.h"
#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"
#include "store/store.h"

namespace sluice::store {
namespace {

uint64_t pagesBytes(MDB_txn* txn, MDB_dbi dbi) {
  MDB_stat st;
  int rc = mdb_stat(txn, dbi, &st);
  if (rc != 0) throw LmdbError(rc, "stat write log");
  return (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * uint64_t{st.ms_psize};
}

void setFloor(MDB_txn* txn, const Env& env, TopicId topic, Offset floor) {
  std::string value;
  keys::appendU64(value, floor);
  putValue(txn, env.wlogFloor, keys::u32(topic), value);
}

}  // namespace

uint64_t lastLoggedSeq(MDB_txn* txn, const Env& env) {
  std::string_view stored;
  if (getValue(txn, env.meta, keys::kLastSeq, &stored) && stored.size() == 8) {
    return keys::readU64(stored.data());
  }
  return 0;
}

void setLastLoggedSeq(MDB_txn* txn, const Env& env, uint64_t seq) {
  std::string value;
  keys::appendU64(value, seq);
  putValue(txn, env.meta, keys::kLastSeq, value);
}

void logBatch(MDB_txn* txn, const Env& env, uint64_t seq, const core::WriteBatch& batch,
              int64_t loggedAtMs) {
  if (env.options().logWindowBytes == 0) return;
  auto encoded = codec::encodeBatch(seq, batch, codec::BatchForm::kStored, loggedAtMs);
  putValue(txn, env.wlog, keys::logEntry(seq), codec::bytesOf(encoded), MDB_APPEND);
}

void trimLog(MDB_txn* txn, const Env& env, int64_t nowMs) {
  uint64_t window = env.options().logWindowBytes;
  if (window == 0) return;
  uint64_t maxAge = env.options().logMaxAgeMs;
  auto expired = [&](std::string_view entry) {
    if (maxAge == 0) return false;
    auto at = codec::loggedAtMsOf(entry);
    if (!at.ok()) brokenInvariant("wlog: " + at.status().message());
    return nowMs - std::max<int64_t>(at.value(), 0) >=
           static_cast<int64_t>(std::min<uint64_t>(maxAge, INT64_MAX));
  };
  for (;;) {
    Cursor cursor(txn, env.wlog);
    if (!cursor.first()) return;
    if (pagesBytes(txn, env.wlog) + pagesBytes(txn, env.wlogSpill) <= window &&
        !expired(cursor.value())) {
      return;
    }
    std::vector<codec::StoredAppendRef> refs;
    auto decoded = codec::decodeBatch(cursor.value(), &refs);
    if (!decoded.ok()) brokenInvariant("wlog: " + decoded.status().message());
    for (const auto& ref : refs) {
      Offset end = ref.firstOffset + ref.count;
      deletePrefix(txn, env.wlogSpill, keys::topicPrefix(ref.topic), keys::message(ref.topic, end));
      setFloor(txn, env, ref.topic, end);
    }
    cursor.del();
  }
}

void openLog(MDB_txn* txn, const Env& env) {
  if (env.options().logWindowBytes == 0) {
    for (MDB_dbi dbi : {env.wlog, env.wlogSpill, env.wlogFloor}) {
      int rc = mdb_drop(txn, dbi, 0);
      if (rc != 0) throw LmdbError(rc, "empty write log");
    }
    return;
  }
  Cursor entries(txn, env.wlog);
  if (entries.first()) return;
  Cursor topics(txn, env.topics);
  for (bool ok = topics.first(); ok; ok = topics.next()) {
    TopicRecord topic = codec::decodeTopic(topics.key(), topics.value());
    setFloor(txn, env, topic.id, topic.nextOffset);
  }
}

Result<std::vector<core::LoggedBatch>> readLogRange(MDB_txn* txn, const Env& env, uint64_t from,
                                                    size_t max) {
  std::vector<core::LoggedBatch> out;
  uint64_t last = lastLoggedSeq(txn, env);
  if (from == 0) from = 1;
  if (from > last || max == 0) return out;
  Cursor cursor(txn, env.wlog);
  uint64_t first = cursor.first() ? keys::readU64(cursor.key().data()) : last + 1;
  if (from < first) {
    return Status(Code::kInvalidArgument,
                  "sequence " + std::to_string(from) + " is outside the write log window (kept: " +
                      (first > last ? std::string("none")
                                    : std::to_string(first) + "-" + std::to_string(last)) +
                      ", last committed " + std::to_string(last) + ")");
  }
  for (bool ok = cursor.seek(keys::logEntry(from)); ok && out.size() < max; ok = cursor.next()) {
    uint64_t seq = keys::readU64(cursor.key().data());
    if (seq != from + out.size()) {
      return Status(Code::kInvalidArgument,
                    "write log has a gap before sequence " + std::to_string(seq));
    }
    std::vector<codec::StoredAppendRef> refs;
    auto decoded = codec::decodeBatch(cursor.value(), &refs);
    if (!decoded.ok()) return decoded.status();
    core::LoggedBatch batch = std::move(decoded).value();
    for (const auto& ref : refs) {
      auto& append = std::get<core::AppendOp>(batch.batch.ops[ref.op]);
      for (uint32_t i = 0; i < ref.count; ++i) {
        Offset offset = ref.firstOffset + i;
        std::string key = keys::message(ref.topic, offset);
        std::string_view value;
        if (!getValue(txn, env.messages, key, &value) &&
            !getValue(txn, env.wlogSpill, key, &value)) {
          return Status(Code::kInvalidArgument,
                        "write log entry " + std::to_string(seq) + ": the body of offset " +
                            std::to_string(offset) + " of topic " + append.topic +
                            " is gone (removed outside the log window)");
        }
        StoredMessageData stored = codec::decodeMessage(offset, value);
        append.messages[i].timestampMs = stored.timestampMs;
        append.messages[i].data = std::move(stored.data);
      }
    }
    out.push_back(std::move(batch));
  }
  return out;
}

}  // namespace sluice::store
