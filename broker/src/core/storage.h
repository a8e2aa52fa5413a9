#pragma once

// The storage interface core needs, in core's own types. store/ implements it on LMDB
// (store::LmdbStore); nothing here names LMDB. Writes are WriteBatch values (write_ops.h)
// committed by a writer thread with group commit; reads are short snapshots.

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kj/async.h>

#include "common/records.h"
#include "common/status.h"
#include "core/write_ops.h"

namespace sluice::core {

struct DedupEntry {
  Offset offset = 0;
  int64_t expiresMs = 0;
};

// An applied transaction as kept for retries (PutTxnOp).
struct TxnEntry {
  std::string fingerprint;
  int64_t expiresMs = 0;
  std::vector<std::vector<PublishAckData>> outputs;
};

// A pending entry as kept on disk (the due index orders them by visibleAtMs).
struct DueEntry {
  Offset offset = 0;
  uint32_t deliveries = 0;
  int64_t visibleAtMs = 0;  // 0: it was held by a consumer when last written.
  RedeliveryCause cause = RedeliveryCause::kNone;
};

// What retention needs of one message, without its payload.
struct MessageMeta {
  int64_t timestampMs = 0;
  uint64_t accountedBytes = 0;  // As MessageData::accountedBytes().
  int64_t expiresAtMs = 0;      // As StoredMessageData::expiresAtMs().
};

// What delivery decides on before it reads a message whole (StoreSnapshot::scanMessages).
struct MessageHead {
  Offset offset = 0;
  int64_t timestampMs = 0;
  std::optional<std::string> key;
  int64_t deliverAtMs = 0;  // As MessageData::deliverAtMs.
  int64_t expiresAtMs = 0;  // As StoredMessageData::expiresAtMs().
  size_t payloadBytes = 0;
  // The subject it was published to (empty: its topic's name); valid only while the head is
  // being decided on.
  std::string_view subject;
};

// What a scan does with the message whose head it shows.
enum class Scan { kTake, kPass, kStop };

// A key-ordered group's waiting entry for a message parked behind an earlier one of its key:
// due only once that one is settled, which writes it due (core::GroupDelivery).
constexpr int64_t kParkedMs = std::numeric_limits<int64_t>::max();

// A waiting entry for a delayed message not yet delivered (what StoredGroup.scheduled counts).
inline bool isScheduled(const PendingRecord& record) {
  return record.deliveries == 0 && record.visibleAtMs > 0 && record.visibleAtMs != kParkedMs;
}

// A pending entry of a key-ordered group whose message has a key, as loaded at start-up.
struct KeyedEntry {
  Offset offset = 0;
  std::string key;
  bool parked = false;      // Its entry is at kParkedMs.
  int64_t deliverAtMs = 0;  // The message's delivery time (0: at once).
};

// A group as loaded at start-up.
struct StoredGroupState {
  GroupRecord record;
  std::vector<KeyedEntry> keyed;  // Key-ordered groups only: in offset order.
  uint64_t heldAtStop = 0;  // Held entries: delivered, never acked, no owner now (due at once).
  std::optional<int64_t> nextDueMs;  // Earliest due entry with visibleAtMs > 0.
};

// Everything the broker loads at start-up: no pending entry, no message.
struct StoredState {
  std::vector<TopicRecord> topics;
  std::vector<StoredGroupState> groups;
  TopicId nextTopicId = 1;
  uint64_t lastSeq = 0;
  std::vector<PrincipalRecord> principals;
  std::vector<CredentialRecord> credentials;
  uint64_t nextCredentialId = 1;
};

// A consistent read-only view of the committed store. Short-lived: open, read, copy out,
// destroy; never hold one across a `.then()`. Thread: the one that made it.
class StoreSnapshot {
 public:
  virtual ~StoreSnapshot() = default;
  virtual std::optional<TopicRecord> topic(std::string_view name) const = 0;
  virtual std::vector<TopicRecord> topics() const = 0;
  virtual std::optional<GroupRecord> group(TopicId topic, std::string_view name) const = 0;
  // Shows the heads of the messages with offset >= from, in order, to `decide`, and returns
  // whole those it takes: up to `maxCount`, stopping before one whose payload would pass
  // `maxBytes` in all (unless none is taken yet: that one is shown) or once they reach it, or
  // when `decide` says kStop. `decide` may read this snapshot.
  virtual std::vector<StoredMessageData> scanMessages(
      TopicId topic, Offset from, size_t maxCount, size_t maxBytes,
      const std::function<Scan(const MessageHead&)>& decide) const = 0;
  // Up to `maxCount` messages with offset >= from, stopping once `maxBytes` of payload are
  // collected (at least one message is returned when any exists).
  std::vector<StoredMessageData> readMessages(TopicId topic, Offset from, size_t maxCount,
                                              size_t maxBytes) const {
    return scanMessages(topic, from, maxCount, maxBytes,
                        [](const MessageHead&) { return Scan::kTake; });
  }
  virtual std::optional<StoredMessageData> readMessage(TopicId topic, Offset offset) const = 0;
  virtual std::optional<MessageMeta> messageMeta(TopicId topic, Offset offset) const = 0;
  // The first offset in [first, next) whose timestamp is >= unixMs, or `next` when none is
  // (binary search; timestamps never decrease within a topic).
  virtual Offset offsetAtTime(TopicId topic, Offset first, Offset next, int64_t unixMs) const = 0;
  // The first offset in [first, end) holding a message not expired at nowMs, or `end` when
  // all are; reads at most `maxCount` messages (their metadata) from `first` on.
  virtual Offset expiredUntil(TopicId topic, Offset first, Offset end, int64_t nowMs,
                              size_t maxCount) const = 0;
  // Timestamp of the first message with offset >= from, if any.
  virtual std::optional<int64_t> timestampAtOrAfter(TopicId topic, Offset from) const = 0;
  virtual std::optional<DedupEntry> dedup(TopicId topic, std::string_view id) const = 0;
  // The transaction applied under `id`, if its record is still kept (it may have expired).
  virtual std::optional<TxnEntry> txn(std::string_view id) const = 0;
  // Up to `max` pending entries of the group in due order with visibleAtMs in
  // [fromMs, untilMs], passing over (neither decoding nor counting) the offsets `skip` names.
  virtual std::vector<DueEntry> due(TopicId topic, std::string_view group, int64_t fromMs,
                                    int64_t untilMs, size_t max,
                                    const std::function<bool(Offset)>& skip = {}) const = 0;
  // The earliest visibleAtMs >= fromMs of the group's pending entries.
  virtual std::optional<int64_t> nextDueMs(TopicId topic, std::string_view group,
                                           int64_t fromMs) const = 0;
  // The lowest pending offset of the group.
  virtual std::optional<Offset> firstPending(TopicId topic, std::string_view group) const = 0;
  // The earliest expiry of any remembered message id or transaction id; none when none is.
  virtual std::optional<int64_t> firstIdExpiryMs() const = 0;
};

// An online, consistent copy of the whole store streamed through a pipe (see Store::backup).
// Thread: created and destroyed on the KJ thread; the copy runs on its own thread.
class BackupCopy {
 public:
  virtual ~BackupCopy() noexcept(false) = default;  // Implementations hold KJ objects.
  // The pipe's read end (non-blocking); the caller owns it from here on and must close it
  // before destroying this object. It reaches EOF once the copy has finished.
  virtual int takeReadFd() = 0;
  // Resolves once the copy has finished: ok, or kStorageFailed. Call at most once.
  virtual kj::Promise<Status> finished() = 0;
};

struct StoreStats {
  uint64_t commits = 0;
  uint64_t batches = 0;
  uint64_t lastSeq = 0;  // Sequence number of the last committed batch.
};

// Thread: kj (every method), except where noted.
class Store {
 public:
  virtual ~Store() = default;
  virtual StoredState load() = 0;
  virtual std::unique_ptr<StoreSnapshot> snapshot() = 0;
  // Queues the batch; resolves on the calling thread's event loop once the commit holding it
  // has been fsync'd (async durability: written), with the batch's sequence number (0 for an
  // empty batch, which only waits for the commits queued before it). A batch either applies
  // whole or the store fails for good: every later commit answers kStorageFailed, as does this
  // one. After shutdown: kShuttingDown.
  virtual kj::Promise<Result<uint64_t>> commit(WriteBatch batch) = 0;
  // As commit(), answered by logging a failure (delivery state, periodic work).
  virtual void commitDetached(WriteBatch batch, const char* what) = 0;
  // Live data as of the last commit, and the limit past which publishes are refused.
  // Thread: any.
  virtual uint64_t usedBytes() const = 0;
  virtual uint64_t publishLimitBytes() const = 0;
  virtual uint64_t maxStorageBytes() const = 0;
  // Roughly what appending these messages adds to the store, for the publish limit.
  virtual uint64_t estimateAppendBytes(const std::vector<MessageData>& messages) const = 0;
  // Non-empty once a commit has failed. Thread: any.
  virtual std::optional<std::string> failure() const = 0;
  // Whether a write may be started now: a replicated store below its min_insync answers
  // kNotEnoughReplicas (checked before core builds a batch, so nothing changes).
  virtual Status admitWrite() const { return Status(); }
  virtual StoreStats stats() const = 0;
  // Starts an online, consistent, compacted copy of the whole store. Errors: kStorageFailed.
  virtual Result<std::unique_ptr<BackupCopy>> backup() = 0;
};

}  // namespace sluice::core
