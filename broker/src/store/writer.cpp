#include "store/store.h"

#include <sys/statvfs.h>

#include <kj/exception.h>

#include <cerrno>
#include <chrono>

#include "store/lmdb_util.h"

namespace sluice::store {
namespace {

constexpr int64_t kAsyncSyncIntervalMs = 100;  // syncCommits = false: fsync at most this often.

int64_t wallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t steadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Finishing a job must not take the writer down with it.
void finishJob(Job& job, const Status& status) {
  try {
    job.finish(status);
  } catch (const kj::Exception& e) {
    storeLog()->error("job finish threw: {}", e.getDescription().cStr());
  } catch (const std::exception& e) {
    storeLog()->error("job finish threw: {}", e.what());
  } catch (...) {
    storeLog()->error("job finish threw a non-standard exception");
  }
}

// Aborts the transaction unless it was handed to commit.
struct TxnGuard {
  MDB_txn* txn = nullptr;
  ~TxnGuard() {
    if (txn != nullptr) mdb_txn_abort(txn);
  }
  MDB_txn* release() {
    MDB_txn* t = txn;
    txn = nullptr;
    return t;
  }
};

class DetachedJob final : public Job {
 public:
  DetachedJob(std::function<Status(WriteTxn&)> body, const char* what)
      : body_(std::move(body)), what_(what) {}
  Status run(WriteTxn& txn) override {
    ran_ = body_(txn);
    return ran_;
  }
  void finish(const Status& commit) override {
    const Status& outcome = commit.ok() ? ran_ : commit;
    if (!outcome.ok()) storeLog()->warn("{} failed: {}", what_, outcome.toString());
  }

 private:
  std::function<Status(WriteTxn&)> body_;
  std::string what_;
  Status ran_;
};

// LMDB reports a short write, which is how a full filesystem usually shows, as EIO. Say how much
// room the store's filesystem has left so that an operator looks at the disk's fill level
// before its hardware.
std::string spaceHint(const std::string& dir, int rc) {
  if (rc != EIO && rc != ENOSPC && rc != EDQUOT) return "";
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return "";
  uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  return " (the filesystem of " + dir + " has " + std::to_string(free) + " bytes free" +
         (free < (uint64_t{1} << 20) ? ": it is full" : "") + ")";
}

}  // namespace

Writer::Writer(Env& env, Clock clock)
    : env_(env), clock_(clock ? std::move(clock) : Clock(wallClockMs)) {
  lastSyncMs_ = steadyMs();
  thread_ = std::thread([this] { loop(); });
}

Writer::~Writer() {
  stop();
}

void Writer::submitDetached(std::function<Status(WriteTxn&)> body, const char* what) {
  enqueue(std::make_unique<DetachedJob>(std::move(body), what));
}

void Writer::enqueue(std::unique_ptr<Job> job) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      refused = Status(Code::kShuttingDown, "the broker is shutting down");
    } else if (failure_) {
      refused = Status(Code::kStorageFailed, *failure_);  // sticky
    } else {
      queue_.push_back(std::move(job));
    }
  }
  if (refused.ok()) {
    wake_.notify_one();
  } else {
    finishJob(*job, refused);  // NOLINT(bugprone-use-after-move): only moved when accepted
  }
}

void Writer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::optional<std::string> Writer::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

WriterStats Writer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Writer::fail(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_) failure_ = why;
}

void Writer::loop() {
  for (;;) {
    std::deque<std::unique_ptr<Job>> batch;
    std::optional<std::string> failed;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has been answered
      batch.swap(queue_);
      failed = failure_;
    }
    if (!failed) {
      try {
        runBatch(batch);
      } catch (const std::exception& e) {
        // runBatch catches what jobs throw; anything here is a writer bug. Refuse further
        // writes rather than guess what was committed.
        storeLog()->error("writer failed err={}", e.what());
        fail(std::string("writer failed: ") + e.what());
      }
      failed = failure();
    }
    for (auto& job : batch) {
      finishJob(*job, Status(Code::kStorageFailed, failed.value_or("the store writer failed")));
    }
  }
}

void Writer::runBatch(std::deque<std::unique_ptr<Job>>& batch) {
  struct Ran {
    std::unique_ptr<Job> job;
    Status outcome;
  };
  while (!batch.empty()) {
    const int64_t nowMs = clock_();
    TxnGuard parent;
    int rc = mdb_txn_begin(env_.raw(), nullptr, 0, &parent.txn);
    if (rc != 0) {
      parent.txn = nullptr;
      storeLog()->error("begin write transaction failed err={}", mdb_strerror(rc));
      fail(std::string("cannot begin a write transaction: ") + mdb_strerror(rc));
      return;  // loop() answers what is left in `batch`
    }
    std::vector<Ran> ran;
    while (!batch.empty()) {
      int lmdbRc = 0;
      Status outcome = runJob(parent.txn, nowMs, *batch.front(), &lmdbRc);
      // The transaction is out of dirty-page room or map space only because of the jobs before
      // this one: commit those and run this one again in a fresh transaction.
      if ((lmdbRc == MDB_TXN_FULL || lmdbRc == MDB_MAP_FULL) && !ran.empty()) break;
      ran.push_back({std::move(batch.front()), std::move(outcome)});
      batch.pop_front();
    }

    uint64_t used = 0;
    try {
      used = usedBytesIn(parent.txn, env_);
    } catch (const LmdbError& e) {
      used = env_.usedBytes();
    }
    auto start = std::chrono::steady_clock::now();
    rc = mdb_txn_commit(parent.release());
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
    if (rc != 0) {
      std::string hint = spaceHint(env_.options().dir, rc);
      storeLog()->error("commit failed err={}{}", mdb_strerror(rc), hint);
      std::string why = std::string("commit failed: ") + mdb_strerror(rc) + hint +
                        "; the broker refuses writes until restarted";
      fail(why);
      for (auto& r : ran)
        finishJob(*r.job, Status(Code::kStorageFailed, why));
      return;
    }
    env_.setUsedBytes(used);
    syncIfDue();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.commits += 1;
      stats_.jobs += ran.size();
      stats_.lastBatchJobs = ran.size();
      stats_.lastCommitMicros = static_cast<uint64_t>(micros);
    }
    commitSeconds_.record(static_cast<double>(micros) / 1e6);
    batchJobs_.record(static_cast<double>(ran.size()));
    for (auto& r : ran)
      finishJob(*r.job, r.outcome);
  }
}

Status Writer::runJob(MDB_txn* parent, int64_t nowMs, Job& job, int* lmdbRc) {
  MDB_txn* child = nullptr;
  int rc = mdb_txn_begin(env_.raw(), parent, 0, &child);
  if (rc != 0) {
    *lmdbRc = rc;
    return lmdbStatus(rc, "begin nested transaction");
  }
  WriteTxn txn(env_, child, nowMs);
  Status ran;
  Status thrown;
  try {
    ran = job.run(txn);
  } catch (const LmdbError& e) {
    if (txn.error_.ok()) {
      txn.errorRc_ = e.rc();
      txn.error_ = e.status();
    }
  } catch (const kj::Exception& e) {
    storeLog()->error("job threw: {}", e.getDescription().cStr());
    thrown =
        Status(Code::kStorageFailed, std::string("internal error: ") + e.getDescription().cStr());
  } catch (const std::exception& e) {
    storeLog()->error("job threw: {}", e.what());
    thrown = Status(Code::kStorageFailed, std::string("internal error: ") + e.what());
  } catch (...) {
    storeLog()->error("job threw a non-standard exception");
    thrown = Status(Code::kStorageFailed, "internal error: unknown exception");
  }
  if (!txn.error_.ok()) {
    mdb_txn_abort(child);
    *lmdbRc = txn.errorRc_;
    return txn.error_;
  }
  if (!thrown.ok()) {
    mdb_txn_abort(child);
    return thrown;
  }
  if (!ran.ok()) {
    // The job's own failure reaches its caller through its result; only undo its writes.
    mdb_txn_abort(child);
    return Status();
  }
  rc = mdb_txn_commit(child);
  if (rc != 0) {
    *lmdbRc = rc;
    return lmdbStatus(rc, "commit nested transaction");
  }
  return Status();
}

void Writer::syncIfDue() {
  if (env_.options().syncCommits) return;
  int64_t now = steadyMs();
  if (now - lastSyncMs_ < kAsyncSyncIntervalMs) return;
  lastSyncMs_ = now;
  int rc = mdb_env_sync(env_.raw(), 1);
  if (rc != 0) {
    storeLog()->error("sync failed err={}", mdb_strerror(rc));
    fail(std::string("sync failed: ") + mdb_strerror(rc) +
         "; the broker refuses writes until restarted");
  }
}

}  // namespace sluice::store
