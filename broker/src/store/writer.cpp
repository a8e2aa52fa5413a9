#include "store/store.h"

#include <sys/statvfs.h>

#include <kj/exception.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <limits>

#include "common/clock.h"
#include "store/apply.h"
#include "store/lmdb_util.h"
#include "store/write_log.h"

namespace sluice::store {
namespace {

constexpr int64_t kAsyncSyncIntervalMs = 100;  // syncCommits = false: fsync at most this often.

int64_t steadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Writer::Job {
  core::WriteBatch batch;
  uint64_t replaySeq = 0;  // Non-zero: a replayed batch that must get this number.
  int64_t loggedAtMs = 0;  // A replayed batch: when its source committed it.
  std::function<void(Result<uint64_t>)> done;
};

namespace {

// Finishing a job must not take the writer down with it.
void finishJob(Writer::Job& job, Result<uint64_t> result) {
  try {
    job.done(std::move(result));
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

Writer::Writer(Env& env, std::function<int64_t()> clockMs)
    : env_(env), clockMs_(clockMs ? std::move(clockMs) : wallClockMs) {
  ReadTxn read(env_);
  lastSeq_ = lastLoggedSeq(read.raw(), env_);
  stats_.lastSeq = lastSeq_;
  lastSyncMs_ = steadyMs();
  thread_ = std::thread([this] { loop(); });
}

Writer::~Writer() {
  stop();
}

kj::Promise<Result<uint64_t>> Writer::commit(core::WriteBatch batch) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Result<uint64_t>>();
  auto job = std::make_unique<Job>();
  job->batch = std::move(batch);
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Result<uint64_t>>>>(
      kj::mv(paf.fulfiller));
  job->done = [fulfiller](Result<uint64_t> result) { (*fulfiller)->fulfill(std::move(result)); };
  enqueue(std::move(job));
  return kj::mv(paf.promise);
}

void Writer::commitDetached(core::WriteBatch batch, const char* what) {
  auto job = std::make_unique<Job>();
  job->batch = std::move(batch);
  std::string name(what);
  job->done = [name](Result<uint64_t> result) {
    if (!result.ok()) storeLog()->warn("{} failed: {}", name, result.status().toString());
  };
  enqueue(std::move(job));
}

Status Writer::replay(std::vector<core::LoggedBatch> batches) {
  std::vector<std::future<Status>> answers;
  for (core::LoggedBatch& logged : batches) {
    auto promise = std::make_shared<std::promise<Status>>();
    answers.push_back(promise->get_future());
    auto job = std::make_unique<Job>();
    job->batch = std::move(logged.batch);
    job->replaySeq = logged.seq;
    job->loggedAtMs = logged.loggedAtMs;
    job->done = [promise](Result<uint64_t> result) { promise->set_value(result.status()); };
    enqueue(std::move(job));
  }
  Status first;
  for (auto& answer : answers) {
    Status status = answer.get();
    if (first.ok() && !status.ok()) first = status;
  }
  return first;
}

kj::Promise<Status> Writer::replayAsync(std::vector<core::LoggedBatch> batches) {
  if (batches.empty()) return Status();
  // The last job answered answers for all. Jobs are answered on the writer thread, or on this
  // one when refused, so the count is shared under a lock.
  struct Answer {
    std::mutex mu;
    Status first;
    size_t left = 0;
    kj::Own<kj::CrossThreadPromiseFulfiller<Status>> fulfiller;
  };
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Status>();
  auto answer = std::make_shared<Answer>();
  answer->left = batches.size();
  answer->fulfiller = kj::mv(paf.fulfiller);
  for (core::LoggedBatch& logged : batches) {
    auto job = std::make_unique<Job>();
    job->batch = std::move(logged.batch);
    job->replaySeq = logged.seq;
    job->loggedAtMs = logged.loggedAtMs;
    job->done = [answer](Result<uint64_t> result) {
      std::lock_guard<std::mutex> lock(answer->mu);
      if (answer->first.ok() && !result.ok()) answer->first = result.status();
      if (--answer->left == 0) answer->fulfiller->fulfill(Status(answer->first));
    };
    enqueue(std::move(job));
  }
  return kj::mv(paf.promise);
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

void Writer::pause() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
}

void Writer::resume() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  wake_.notify_all();
}

void Writer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    paused_ = false;
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
    std::deque<std::unique_ptr<Job>> jobs;
    std::optional<std::string> failed;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || (!paused_ && !queue_.empty()); });
      if (queue_.empty()) return;  // stopping, and everything queued has been answered
      jobs.swap(queue_);
      failed = failure_;
    }
    if (!failed) {
      try {
        runJobs(jobs);
      } catch (const std::exception& e) {
        // runJobs catches what applying throws; anything here is a writer bug. Refuse further
        // writes rather than guess what was committed.
        storeLog()->error("writer failed err={}", e.what());
        fail(std::string("writer failed: ") + e.what());
      }
      failed = failure();
    }
    for (auto& job : jobs) {
      finishJob(*job, Status(Code::kStorageFailed, failed.value_or("the store writer failed")));
    }
  }
}

namespace {

// Applies one job in `txn`, the commit's write transaction. Returns 0, or the LMDB error (with
// its status in *why); ApplyError and other exceptions give -1 and a reason. After an error the
// transaction holds part of the job and must be aborted.
int applyJob(Env& env, MDB_txn* txn, const core::WriteBatch& batch, uint64_t seq,
             int64_t loggedAtMs, Status* why) {
  try {
    applyBatch(txn, env, batch);
    logBatch(txn, env, seq, batch, loggedAtMs);
  } catch (const LmdbError& e) {
    *why = e.status();
    return e.rc();
  } catch (const ApplyError& e) {
    *why = Status(Code::kStorageFailed,
                  std::string("write batch does not fit the store: ") + e.what());
    return -1;
  } catch (const std::exception& e) {
    *why = Status(Code::kStorageFailed, std::string("applying a write batch failed: ") + e.what());
    return -1;
  } catch (const kj::Exception& e) {
    *why = Status(Code::kStorageFailed,
                  std::string("applying a write batch failed: ") + e.getDescription().cStr());
    return -1;
  }
  return 0;
}

}  // namespace

// Jobs are applied straight into one write transaction, not each in a nested one: a nested
// transaction copies every page it touches from its parent, which cost more than the writes
// themselves. Applying is deterministic, so when a job runs out of dirty-page room or map
// space after others, the transaction is aborted and those others are applied again, alone,
// with the same result; the job then gets a transaction of its own.
void Writer::runJobs(std::deque<std::unique_ptr<Job>>& jobs) {
  size_t cap = std::numeric_limits<size_t>::max();  // Batches the next transaction may take.
  while (!jobs.empty()) {
    TxnGuard parent;
    int rc = mdb_txn_begin(env_.raw(), nullptr, 0, &parent.txn);
    if (rc != 0) {
      parent.txn = nullptr;
      storeLog()->error("begin write transaction failed err={}", mdb_strerror(rc));
      fail(std::string("cannot begin a write transaction: ") + mdb_strerror(rc));
      return;  // loop() answers what is left in `jobs`
    }
    std::vector<uint64_t> seqs;  // Of jobs[0, taken): 0 for an empty batch.
    int64_t now = clockMs_();    // What the log records; not part of the applied state.
    uint64_t seq = lastSeq_;
    uint64_t applied = 0;
    bool again = false;
    while (seqs.size() < jobs.size() && applied < cap) {
      Job& job = *jobs[seqs.size()];
      if (job.batch.empty()) {
        seqs.push_back(0);
        continue;
      }
      if (job.replaySeq != 0 && job.replaySeq != seq + 1) {
        std::string why = "replayed batch " + std::to_string(job.replaySeq) +
                          " does not follow the store's last batch " + std::to_string(seq);
        finishJob(job, Status(Code::kInvalidArgument, why));
        jobs.erase(jobs.begin() + static_cast<std::ptrdiff_t>(seqs.size()));
        continue;
      }
      Status why;
      rc = applyJob(env_, parent.txn, job.batch, seq + 1,
                    job.loggedAtMs != 0 ? job.loggedAtMs : now, &why);
      if ((rc == MDB_TXN_FULL || rc == MDB_MAP_FULL) && applied > 0) {
        again = true;
        break;
      }
      if (rc != 0) {
        // The broker built this batch on state it believes committed; failing it alone
        // would leave that belief wrong. Stop writing.
        storeLog()->error("write batch failed seq={} err={}", seq + 1, why.toString());
        fail(why.message() + "; the broker refuses writes until restarted");
        break;
      }
      ++seq;
      ++applied;
      seqs.push_back(seq);
    }
    if (again) {
      cap = applied;  // The guard aborts this transaction; the same jobs run again, fewer.
      continue;
    }
    cap = std::numeric_limits<size_t>::max();
    auto answer = [&](const std::function<Result<uint64_t>(size_t)>& result) {
      for (size_t i = 0; i < seqs.size(); ++i)
        finishJob(*jobs[i], result(i));
      jobs.erase(jobs.begin(), jobs.begin() + static_cast<std::ptrdiff_t>(seqs.size()));
    };
    if (auto failed = failure()) {
      // The parent is aborted: nothing of this transaction is kept. loop() answers the jobs
      // not yet run; these ran in it and are answered here.
      answer([&](size_t) { return Status(Code::kStorageFailed, *failed); });
      return;
    }

    uint64_t used = 0;
    try {
      if (applied > 0) {
        setLastLoggedSeq(parent.txn, env_, seq);
        trimLog(parent.txn, env_, now);
      }
      used = usedBytesIn(parent.txn, env_);
    } catch (const LmdbError& e) {
      storeLog()->error("write log update failed err={}", e.status().toString());
      fail(e.status().message() + "; the broker refuses writes until restarted");
      return;
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
      answer([&](size_t) { return Status(Code::kStorageFailed, why); });
      return;
    }
    lastSeq_ = seq;
    env_.setUsedBytes(used);
    syncIfDue();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.commits += 1;
      stats_.batches += applied;
      stats_.lastSeq = seq;
      stats_.lastBatchJobs = seqs.size();
      stats_.lastCommitMicros = static_cast<uint64_t>(micros);
    }
    commitSeconds_.record(static_cast<double>(micros) / 1e6);
    batchJobs_.record(static_cast<double>(seqs.size()));
    answer([&](size_t i) { return Result<uint64_t>(seqs[i]); });
  }
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
