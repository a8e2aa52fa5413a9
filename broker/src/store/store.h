#pragma once

// The LMDB store: one environment, named databases (layout in README.md), one writer thread
// applying write batches with group commit, the write log, and short read snapshots. It
// implements core::Store; core/ never sees LMDB.

#include <lmdb.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <capnp/common.h>
#include <kj/array.h>
#include <kj/async.h>

#include "common/histogram.h"
#include "common/records.h"
#include "common/status.h"
#include "core/storage.h"
#include "core/write_ops.h"

namespace sluice::store {

struct EnvOptions {
  std::string dir;               // Created if missing.
  uint64_t maxStorageBytes = 0;  // Map size; the data file never grows past it.
  // Publishes are refused (kStorageFull) once live data + the batch would exceed
  // maxStorageBytes - reserveBytes, so acks, deletes and purges always find free pages.
  // 0: max(1 MiB, maxStorageBytes / 20), at most 256 MiB.
  uint64_t reserveBytes = 0;
  // false only for the opt-in, labelled --durability=async mode (MDB_NOSYNC + periodic sync).
  bool syncCommits = true;
  // Bytes of pages the write log may keep (its entries and the bodies of messages removed
  // while their entry is kept). 0: the log keeps nothing (sequence numbers still advance) and
  // a single broker pays nothing for it.
  uint64_t logWindowBytes = 0;
  // With a window: also drop entries logged this long ago or longer (0: no age bound).
  uint64_t logMaxAgeMs = 0;
  // Opens an existing store for reading only (offline tools); no lock, no writer.
  bool readOnly = false;
};

// The LMDB environment and its database handles. Created in main before any thread starts,
// destroyed after all have joined. Thread: any (LMDB env handles are thread-safe).
class Env {
 public:
  // Opens (creating if needed) the store in options.dir; migrates a format-1 store to the
  // current format. Fails with kStorageFailed and a message naming the LMDB error and the
  // path (e.g. the directory is not writable, or the store's format is newer than this
  // broker's).
  static Result<std::unique_ptr<Env>> open(const EnvOptions& options);
  ~Env();

  MDB_env* raw() const { return env_; }
  const EnvOptions& options() const { return options_; }
  uint64_t publishLimitBytes() const;
  unsigned pageSize() const { return pageSize_; }

  // Live data (pages of all databases) as of the last commit. Updated by the writer.
  uint64_t usedBytes() const { return usedBytes_.load(std::memory_order_relaxed); }
  void setUsedBytes(uint64_t bytes) { usedBytes_.store(bytes, std::memory_order_relaxed); }

  // Verifies the invariants of every database (for `sluiced --check`): records decode, every
  // topic's stats match its messages, offsets are below nextOffset, groups and pending entries
  // belong to existing topics, the due index matches the waiting entries, no entry is both held
  // and waiting, group counts match.
  // Returns the first violation.
  Status check() const;
  // Writes every key and value of the state databases (not the write log), in key order, as
  // hex text lines `db key value`: two stores are logically equal when their dumps are.
  Status dump(std::FILE* out) const;

  // Database handles.
  MDB_dbi meta = 0, topics = 0, messages = 0, groups = 0, held = 0, pending = 0, due = 0, dedup = 0,
          dedupExpiry = 0, txns = 0, txnExpiry = 0, wlog = 0, wlogSpill = 0, wlogFloor = 0,
          auth = 0;

 private:
  Env() = default;
  MDB_env* env_ = nullptr;
  int lockFd_ = -1;  // flock'd sluiced.lock in the store directory.
  unsigned pageSize_ = 4096;
  EnvOptions options_;
  std::atomic<uint64_t> usedBytes_{0};
};

// Decodes one batch of shipLog's. Errors: kInvalidArgument naming what is wrong.
Result<core::LoggedBatch> decodeShipped(std::string_view bytes);

// A read-only snapshot of the store. Thread: the thread that created it.
class ReadTxn final : public core::StoreSnapshot {
 public:
  explicit ReadTxn(const Env& env);  // Aborts the process if LMDB cannot begin a read txn.
  ~ReadTxn() override;
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

  std::optional<TopicRecord> topic(std::string_view name) const override;
  std::vector<TopicRecord> topics() const override;
  std::optional<GroupRecord> group(TopicId topic, std::string_view name) const override;
  std::vector<StoredMessageData> scanMessages(
      TopicId topic, Offset from, size_t maxCount, size_t maxBytes,
      const std::function<core::Scan(const core::MessageHead&)>& decide) const override;
  std::optional<StoredMessageData> readMessage(TopicId topic, Offset offset) const override;
  std::optional<core::MessageMeta> messageMeta(TopicId topic, Offset offset) const override;
  Offset offsetAtTime(TopicId topic, Offset first, Offset next, int64_t unixMs) const override;
  Offset expiredUntil(TopicId topic, Offset first, Offset end, int64_t nowMs,
                      size_t maxCount) const override;
  std::optional<int64_t> timestampAtOrAfter(TopicId topic, Offset from) const override;
  std::optional<core::DedupEntry> dedup(TopicId topic, std::string_view id) const override;
  std::optional<core::TxnEntry> txn(std::string_view id) const override;
  std::vector<core::DueEntry> due(TopicId topic, std::string_view group, int64_t fromMs,
                                  int64_t untilMs, size_t max,
                                  const std::function<bool(Offset)>& skip = {}) const override;
  std::optional<int64_t> nextDueMs(TopicId topic, std::string_view group,
                                   int64_t fromMs) const override;
  std::optional<Offset> firstPending(TopicId topic, std::string_view group) const override;
  std::optional<int64_t> firstIdExpiryMs() const override;

  // Everything the broker loads at start-up.
  core::StoredState load() const;
  // Up to `max` committed batches from sequence `from` (materialized: message bodies
  // included). Errors: kInvalidArgument when `from` is outside the kept window, or a stored
  // entry or body is missing or corrupt.
  Result<std::vector<core::LoggedBatch>> readLog(uint64_t from, size_t max) const;
  uint64_t lastSeq() const;
  // The epoch of the last BeginEpochOp applied (0 and no leader: none) and its leader.
  struct EpochMark {
    uint64_t epoch = 0;
    std::string leader;
    std::string cluster;  // Empty: the store never was in a cluster.
  };
  EpochMark leaderEpoch() const;
  // Committed batches from `from` in the shipped form (message bodies inline: what a follower
  // applies after decodeShipped), at least one when any is committed, and no more than about
  // maxBytes. Errors as readLog.
  Result<std::vector<kj::Array<capnp::word>>> shipLog(uint64_t from, size_t maxBytes) const;

  MDB_txn* raw() const { return txn_; }

 private:
  std::vector<core::KeyedEntry> keyedEntries(TopicId topic, const std::string& group) const;
  const Env& env_;
  MDB_txn* txn_ = nullptr;
};

struct WriterStats {
  uint64_t commits = 0;
  uint64_t batches = 0;
  uint64_t lastSeq = 0;
  uint64_t lastBatchJobs = 0;
  uint64_t lastCommitMicros = 0;
};

// Owns the only write transaction. Drains its queue, applies every queued batch in one
// transaction, gives each a sequence number, appends it to the write log, commits once with
// fsync (group commit), then answers every batch. A batch that runs out of room after others
// is retried in a transaction of its own, after those others are applied again and committed. A
// failed apply or commit is sticky: every later batch is answered kStorageFailed without being
// applied. Thread: its own; commit() from any thread with a KJ event loop.
class Writer {
 public:
  // clockMs: Unix ms recorded with each logged batch (the write log's age); default the
  // system clock.
  explicit Writer(Env& env, std::function<int64_t()> clockMs = {});
  ~Writer();  // stop()

  // Queues `batch`; the promise resolves (on the calling thread's KJ event loop) after the
  // commit holding it, with its sequence number (0 for an empty batch) or the failure.
  // After stop(): kShuttingDown.
  kj::Promise<Result<uint64_t>> commit(core::WriteBatch batch);
  // Fire-and-forget: a failure is logged naming `what`.
  void commitDetached(core::WriteBatch batch, const char* what);
  // Applies already-numbered batches (replaying a write log) and waits for their commit.
  // Each batch's sequence number must follow the store's last. Thread: any but the writer.
  Status replay(std::vector<core::LoggedBatch> batches);
  // As replay(), without blocking: resolves on the calling thread's event loop once every
  // batch is committed, with the first failure if any (a follower applying its leader's log).
  kj::Promise<Status> replayAsync(std::vector<core::LoggedBatch> batches);

  // Stops taking batches off the queue until resume(): what is queued meanwhile is committed
  // together, in one transaction, once resumed. A batch being applied when pause() is called
  // still commits. stop() resumes. For tests and maintenance.
  void pause();
  void resume();
  // Finishes the queued batches (they are committed and answered), then joins the thread.
  void stop();
  // Non-empty once a commit has failed.
  std::optional<std::string> failure() const;
  WriterStats stats() const;
  // Duration of each commit (seconds, including LMDB's fsyncs) and batches per commit.
  const Histogram& commitSeconds() const { return commitSeconds_; }
  const Histogram& batchJobs() const { return batchJobs_; }

  struct Job;  // Defined in writer.cpp.

 private:
  void enqueue(std::unique_ptr<Job> job);
  void loop();
  // Runs the jobs in as few commits as possible and answers every one.
  void runJobs(std::deque<std::unique_ptr<Job>>& jobs);
  // Makes `why` the sticky failure.
  void fail(const std::string& why);
  void syncIfDue();

  Env& env_;
  std::function<int64_t()> clockMs_;
  uint64_t lastSeq_ = 0;    // Writer thread only (set before it starts).
  int64_t lastSyncMs_ = 0;  // Writer thread only; for syncCommits = false.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  bool paused_ = false;
  std::optional<std::string> failure_;
  WriterStats stats_;
  Histogram commitSeconds_{
      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}};
  Histogram batchJobs_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 1024}};
  std::thread thread_;
};

// core::Store on LMDB. Thread: kj, as core::Store says.
class LmdbStore final : public core::Store {
 public:
  LmdbStore(Env& env, Writer& writer) : env_(env), writer_(writer) {}
  core::StoredState load() override;
  std::unique_ptr<core::StoreSnapshot> snapshot() override;
  kj::Promise<Result<uint64_t>> commit(core::WriteBatch batch) override;
  void commitDetached(core::WriteBatch batch, const char* what) override;
  uint64_t usedBytes() const override { return env_.usedBytes(); }
  uint64_t publishLimitBytes() const override { return env_.publishLimitBytes(); }
  uint64_t maxStorageBytes() const override { return env_.options().maxStorageBytes; }
  uint64_t estimateAppendBytes(const std::vector<MessageData>& messages) const override;
  std::optional<std::string> failure() const override { return writer_.failure(); }
  core::StoreStats stats() const override;
  Result<std::unique_ptr<core::BackupCopy>> backup() override;

 private:
  Env& env_;
  Writer& writer_;
};

}  // namespace sluice::store
