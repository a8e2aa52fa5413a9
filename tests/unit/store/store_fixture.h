#pragma once

// A fresh store in a temp dir with its Writer, a KJ event loop on the test thread to wait for
// the writer's answers, and builders for the write operations the broker would send.

#include <lmdb.h>
#include <stdlib.h>
#include <functional>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <kj/async.h>
#include <catch2/catch.hpp>

#include "store/store.h"

namespace sluice::store::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-store-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline MessageData message(std::string payload, std::string id = {}) {
  MessageData m;
  m.payload = std::move(payload);
  m.id = std::move(id);
  return m;
}

inline std::vector<MessageData> messages(size_t count, size_t payloadBytes = 8) {
  std::vector<MessageData> out;
  for (size_t i = 0; i < count; ++i)
    out.push_back(message(std::string(payloadBytes, 'x')));
  return out;
}

inline core::WriteBatch batchOf(std::vector<core::WriteOp> ops) {
  core::WriteBatch batch;
  batch.ops = std::move(ops);
  return batch;
}

inline core::PutPendingOp pendingOp(TopicId topic, std::string group, Offset offset,
                                    int64_t visibleAtMs, uint32_t deliveries = 1) {
  return core::PutPendingOp{topic,      std::move(group), offset,
                            deliveries, visibleAtMs,      core::RedeliveryCause::kNack};
}

inline core::PutGroupOp groupOp(TopicId topic, std::string name, Offset position) {
  GroupRecord g;
  g.topicId = topic;
  g.name = std::move(name);
  g.position = position;
  g.createdMs = 1;
  return core::PutGroupOp{g};
}

struct StoreConfig {
  uint64_t maxStorageBytes = 64u << 20;
  uint64_t reserveBytes = 0;
  bool syncCommits = true;
  uint64_t logWindowBytes = 0;
  uint64_t logMaxAgeMs = 0;
  std::function<int64_t()> clockMs = {};  // The writer's clock (default: the system's).
};

// One KJ event loop for the test thread, shared by every TestStore (a thread has at most one).
struct TestLoop {
  kj::EventLoop loop;
  kj::WaitScope ws{loop};
  static TestLoop& get() {
    static TestLoop instance;
    return instance;
  }
};

class TestStore {
 public:
  static constexpr int64_t kStartMs = 1'700'000'000'000;

  explicit TestStore(StoreConfig config = {}) {
    TestLoop::get();  // Before the writer's first promise.
    options_.dir = dir_.path() + "/data";
    options_.maxStorageBytes = config.maxStorageBytes;
    options_.reserveBytes = config.reserveBytes;
    options_.syncCommits = config.syncCommits;
    options_.logWindowBytes = config.logWindowBytes;
    options_.logMaxAgeMs = config.logMaxAgeMs;
    clockMs_ = config.clockMs;
    open();
  }
  ~TestStore() { close(); }

  void open() {
    auto opened = Env::open(options_);
    REQUIRE(opened.status().toString() == "ok");
    env_ = std::move(opened).value();
    writer_ = std::make_unique<Writer>(*env_, clockMs_);
  }
  void close() {
    writer_.reset();
    env_.reset();
  }
  void reopen() {
    close();
    open();
  }

  Env& env() { return *env_; }
  Writer& writer() { return *writer_; }
  kj::WaitScope& ws() { return TestLoop::get().ws; }
  const EnvOptions& options() const { return options_; }

  Result<uint64_t> commit(core::WriteBatch batch) {
    return writer_->commit(std::move(batch)).wait(ws());
  }
  uint64_t commitOk(core::WriteBatch batch) {
    auto seq = commit(std::move(batch));
    REQUIRE(seq.status().toString() == "ok");
    return seq.value();
  }

  // Creates a topic with the next free id, as the broker would.
  TopicRecord create(const std::string& name, TopicConfig settings = {}) {
    TopicId id = ReadTxn(*env_).load().nextTopicId;
    commitOk(batchOf({core::CreateTopicOp{id, name, settings, kStartMs}}));
    return topic(name);
  }

  // The append the broker would build for `batch` at the topic's end, all at `timestampMs`.
  core::AppendOp appendOp(const std::string& name, std::vector<MessageData> batch,
                          int64_t timestampMs = kStartMs, int64_t dedupExpiresMs = 0) {
    TopicRecord t = topic(name);
    core::AppendOp op;
    op.id = t.id;
    op.topic = name;
    op.firstOffset = t.nextOffset;
    for (auto& m : batch)
      op.messages.push_back(core::AppendedMessage{timestampMs, std::move(m), dedupExpiresMs});
    return op;
  }
  // Appends and returns the first offset written.
  Offset append(const std::string& name, std::vector<MessageData> batch,
                int64_t timestampMs = kStartMs, int64_t dedupExpiresMs = 0) {
    core::AppendOp op = appendOp(name, std::move(batch), timestampMs, dedupExpiresMs);
    Offset first = op.firstOffset;
    commitOk(batchOf({std::move(op)}));
    return first;
  }

  TopicRecord topic(const std::string& name) {
    ReadTxn read(*env_);
    auto found = read.topic(name);
    REQUIRE(found.has_value());
    return *found;
  }
  std::optional<GroupRecord> group(TopicId topic, const std::string& name) {
    return ReadTxn(*env_).group(topic, name);
  }

  // Every key and value of the state databases (Env::dump), as text.
  std::string dump() {
    char* buffer = nullptr;
    size_t size = 0;
    std::FILE* out = open_memstream(&buffer, &size);
    REQUIRE(out != nullptr);
    Status dumped = env_->dump(out);
    std::fclose(out);
    std::string text(buffer, size);
    free(buffer);  // NOLINT(cppcoreguidelines-no-malloc): open_memstream's buffer
    REQUIRE(dumped.ok());
    return text;
  }

  // Number of entries in one database, read directly with LMDB.
  size_t entries(MDB_dbi dbi) {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env_->raw(), nullptr, MDB_RDONLY, &txn) == 0);
    MDB_stat st;
    REQUIRE(mdb_stat(txn, dbi, &st) == 0);
    mdb_txn_abort(txn);
    return st.ms_entries;
  }

  // Writes (or with value == nullptr, deletes) one raw key with LMDB, bypassing the store,
  // for corruption tests.
  void putRaw(MDB_dbi dbi, const std::string& key, const std::string* value) {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env_->raw(), nullptr, 0, &txn) == 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    if (value != nullptr) {
      MDB_val v{value->size(), const_cast<char*>(value->data())};
      REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    } else {
      REQUIRE(mdb_del(txn, dbi, &k, nullptr) == 0);
    }
    REQUIRE(mdb_txn_commit(txn) == 0);
  }
  void putRaw(MDB_dbi dbi, const std::string& key, const std::string& value) {
    putRaw(dbi, key, &value);
  }
  std::string getRaw(MDB_dbi dbi, const std::string& key) {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env_->raw(), nullptr, MDB_RDONLY, &txn) == 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v;
    REQUIRE(mdb_get(txn, dbi, &k, &v) == 0);
    std::string out(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    return out;
  }

 private:
  std::function<int64_t()> clockMs_;
  TempDir dir_;
  EnvOptions options_;
  std::unique_ptr<Env> env_;
  std::unique_ptr<Writer> writer_;
};

}  // namespace sluice::store::test
