#pragma once

// The LMDB store: one environment, named databases (layout in README.md), one writer thread
// doing group commit, and short read transactions for the KJ thread.

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

#include <kj/async.h>

#include "common/histogram.h"
#include "common/records.h"
#include "common/status.h"

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
};

// The LMDB environment and its database handles. Created in main before any thread starts,
// destroyed after all have joined. Thread: any (LMDB env handles are thread-safe).
class Env {
 public:
  // Opens (creating if needed) the store in options.dir. Fails with kStorageFailed and a
  // message naming the LMDB error and the path (e.g. the directory is not writable, or the
  // store's format version is newer than this broker's).
  static Result<std::unique_ptr<Env>> open(const EnvOptions& options);
  ~Env();

  MDB_env* raw() const { return env_; }
  const EnvOptions& options() const { return options_; }
  uint64_t publishLimitBytes() const;

  // Live data (pages of all databases) as of the last commit. Updated by the writer.
  uint64_t usedBytes() const { return usedBytes_.load(std::memory_order_relaxed); }
  void setUsedBytes(uint64_t bytes) { usedBytes_.store(bytes, std::memory_order_relaxed); }

  // Verifies the invariants of every database (for `sluiced --check`): records decode, every
  // topic's stats match its messages, offsets are below nextOffset, groups and pending entries
  // belong to existing topics. Returns the first violation.
  Status check() const;

  // Database handles.
  MDB_dbi meta = 0, topics = 0, messages = 0, groups = 0, pending = 0, dedup = 0, dedupExpiry = 0;

 private:
  Env() = default;
  MDB_env* env_ = nullptr;
  int lockFd_ = -1;  // flock'd sluiced.lock in the store directory.
  EnvOptions options_;
  std::atomic<uint64_t> usedBytes_{0};
};

// A read-only snapshot of the store. Short-lived: open, read, copy out, destroy; never hold
// one across a `.then()`. Thread: the thread that created it.
class ReadTxn {
 public:
  explicit ReadTxn(const Env& env);  // Aborts the process if LMDB cannot begin a read txn.
  ~ReadTxn();
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

  std::optional<TopicRecord> topic(std::string_view name) const;
  std::vector<TopicRecord> topics() const;
  // Everything the broker loads at start-up.
  Snapshot snapshot() const;

  // Copies out up to `maxCount` messages of `topic` with offset >= from, stopping early once
  // `maxBytes` of payload have been collected (at least one message is always returned).
  std::vector<StoredMessageData> readMessages(TopicId topic, Offset from, size_t maxCount,
                                              size_t maxBytes) const;
  // One message, if retained.
  std::optional<StoredMessageData> readMessage(TopicId topic, Offset offset) const;
  // The first retained offset whose timestamp is >= unixMs, or `nextOffset` of the topic when
  // none is (binary search; timestamps never decrease within a topic).
  Offset offsetAtTime(const TopicRecord& topic, int64_t unixMs) const;
  // Timestamp of the first retained message with offset >= from, if any.
  std::optional<int64_t> timestampAtOrAfter(TopicId topic, Offset from) const;

 private:
  const Env& env_;
  MDB_txn* txn_ = nullptr;
};

// The write transaction, as seen by one job. Every job runs in its own nested transaction:
// if the job returns an error (or LMDB fails inside it), everything it wrote is rolled back
// and the other jobs of the same commit are unaffected. Thread: writer.
class WriteTxn {
 public:
  int64_t nowMs() const { return nowMs_; }  // Wall clock at the start of this commit.

  std::optional<TopicRecord> topic(std::string_view name);
  // Creates a topic with a fresh id. Errors: kTopicExists.
  Result<TopicRecord> createTopic(std::string_view name, const TopicSettings& settings);
  // Deletes the topic and all of its messages, groups, pending entries and dedup entries.
  // Returns the number of messages removed. Errors: kTopicNotFound.
  Result<uint64_t> deleteTopic(std::string_view name);
  // Removes every message of the topic and its pending and dedup entries; nextOffset is kept.
  // Returns the number removed. Errors: kTopicNotFound.
  Result<uint64_t> purgeTopic(std::string_view name);

  // Appends the messages in order. For each message with an id seen within the topic's dedup
  // window, nothing is stored and the original offset is returned with duplicate = true (also
  // for a repeat inside this same batch; a dedupWindowMs of 0 remembers no ids). Timestamps
  // are nowMs, never below the topic's last one. Then drops messages from the front past
  // maxMessages / maxBytes.
  // Errors: kTopicNotFound; kStorageFull when live data + the batch would pass the publish
  // limit (or LMDB reports MDB_MAP_FULL). Validation of sizes is the caller's job.
  Result<std::vector<PublishAckData>> append(std::string_view topic,
                                             const std::vector<MessageData>& messages);
  // Appends one message with extra headers, e.g. to a dead-letter topic (creating that topic
  // with default settings if it does not exist). Not subject to the publish limit.
  Result<Offset> appendInternal(std::string_view topic, const MessageData& message);

  // Drops messages from the front of the topic: those older than maxAgeMs, those past
  // maxMessages / maxBytes, and those with offset < dropBelow (work-queue floor; 0 = none).
  // Pending entries of dropped messages are removed. Returns the number dropped.
  Result<uint64_t> applyRetention(std::string_view topic, Offset dropBelow);
  // Removes expired dedup entries (all topics); returns how many.
  uint64_t expireDedup();

  std::optional<GroupRecord> group(TopicId topic, std::string_view name);
  void putGroup(const GroupRecord& group);
  // Deletes the group and its pending entries; returns the number of pending entries dropped.
  uint64_t deleteGroup(TopicId topic, std::string_view name);
  void putPending(const PendingRecord& pending);
  // Returns false when there was no such entry.
  bool deletePending(TopicId topic, std::string_view group, Offset offset);
  // Removes all pending entries of the group (used by group reset); returns how many.
  uint64_t clearPending(TopicId topic, std::string_view group);

  std::optional<StoredMessageData> readMessage(TopicId topic, Offset offset);

 private:
  friend class Writer;
  WriteTxn(Env& env, MDB_txn* txn, int64_t nowMs) : env_(env), txn_(txn), nowMs_(nowMs) {}
  Env& env_;
  MDB_txn* txn_;
  int64_t nowMs_;
  // The first LMDB failure inside this job (its rc and status); the writer then rolls the job
  // back even if the job ignored the error.
  int errorRc_ = 0;
  Status error_;
};

// A unit of work for the writer. Thread: created on any thread, run and finished on the writer.
class Job {
 public:
  virtual ~Job() = default;
  // Runs inside its nested transaction; a non-ok status rolls back what it wrote.
  virtual Status run(WriteTxn& txn) = 0;
  // Called after the commit that holds the job (or with the commit's failure).
  virtual void finish(const Status& commit) = 0;
};

struct WriterStats {
  uint64_t commits = 0;
  uint64_t jobs = 0;
  uint64_t lastBatchJobs = 0;
  uint64_t lastCommitMicros = 0;
};

// Owns the only write transaction. Drains its queue, runs every queued job in one transaction,
// commits once with fsync (group commit), then finishes every job. A failed commit is sticky:
// every later job is answered kStorageFailed without running. Thread: its own; submit() from
// any thread.
class Writer {
 public:
  // Milliseconds since the Unix epoch; WriteTxn::nowMs() is read from it once per commit.
  using Clock = std::function<int64_t()>;
  // `clock`: empty for the wall clock (tests pass their own).
  explicit Writer(Env& env, Clock clock = nullptr);
  ~Writer();  // stop()

  // Queues `body`; the promise resolves (on the calling thread's KJ event loop) after the
  // commit holding it, with body's result or the commit's failure. After stop():
  // kShuttingDown.
  template <typename T>
  kj::Promise<Result<T>> submit(std::function<Result<T>(WriteTxn&)> body);
  // Fire-and-forget: errors are logged.
  void submitDetached(std::function<Status(WriteTxn&)> body, const char* what);

  // Finishes the queued jobs (they are committed and answered), then joins the thread.
  void stop();
  // Non-empty once a commit has failed.
  std::optional<std::string> failure() const;
  WriterStats stats() const;
  // Duration of each commit (seconds, including LMDB's fsyncs) and jobs per commit.
  const Histogram& commitSeconds() const { return commitSeconds_; }
  const Histogram& batchJobs() const { return batchJobs_; }

 private:
  void enqueue(std::unique_ptr<Job> job);
  void loop();
  // Runs the batch in as few commits as possible and finishes every job of it.
  void runBatch(std::deque<std::unique_ptr<Job>>& batch);
  // Runs one job in a transaction nested in `parent`. Returns ok, or the failure to answer the
  // job with (its writes rolled back); *lmdbRc is the LMDB error behind it, if any.
  Status runJob(MDB_txn* parent, int64_t nowMs, Job& job, int* lmdbRc);
  // Makes `why` the sticky failure.
  void fail(const std::string& why);
  void syncIfDue();

  Env& env_;
  Clock clock_;
  int64_t lastSyncMs_ = 0;  // Writer thread only; for syncCommits = false.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  std::optional<std::string> failure_;
  WriterStats stats_;
  Histogram commitSeconds_{
      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}};
  Histogram batchJobs_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 1024}};
  std::thread thread_;
};

template <typename T>
kj::Promise<Result<T>> Writer::submit(std::function<Result<T>(WriteTxn&)> body) {
  struct TypedJob final : Job {
    std::function<Result<T>(WriteTxn&)> body;
    std::optional<Result<T>> result;
    kj::Own<kj::CrossThreadPromiseFulfiller<Result<T>>> fulfiller;
    ~TypedJob() noexcept override {}  // kj::Own's destructor is noexcept(false); Job's is not.
    Status run(WriteTxn& txn) override {
      result.emplace(body(txn));
      return result->status();
    }
    void finish(const Status& commit) override {
      if (!commit.ok()) {
        fulfiller->fulfill(Result<T>(commit));
      } else {
        fulfiller->fulfill(std::move(*result));
      }
    }
  };
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Result<T>>();
  auto job = std::make_unique<TypedJob>();
  job->body = std::move(body);
  job->fulfiller = kj::mv(paf.fulfiller);
  enqueue(std::move(job));
  return kj::mv(paf.promise);
}

}  // namespace sluice::store
