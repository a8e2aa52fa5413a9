#pragma once

// A fresh store in a temp dir, a Writer with a test clock, and a KJ event loop on the test
// thread to wait for the writer's answers.

#include <lmdb.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
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

class TestStore {
 public:
  static constexpr int64_t kStartMs = 1'700'000'000'000;

  explicit TestStore(uint64_t maxStorageBytes = 64u << 20, uint64_t reserveBytes = 0,
                     bool syncCommits = true) {
    options_.dir = dir_.path() + "/data";
    options_.maxStorageBytes = maxStorageBytes;
    options_.reserveBytes = reserveBytes;
    options_.syncCommits = syncCommits;
    open();
  }
  ~TestStore() { close(); }

  void open() {
    auto opened = Env::open(options_);
    REQUIRE(opened.status().toString() == "ok");
    env_ = std::move(opened).value();
    writer_ = std::make_unique<Writer>(*env_, [this] { return now_.load(); });
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
  kj::WaitScope& ws() { return ws_; }
  const EnvOptions& options() const { return options_; }
  void advance(int64_t ms) { now_ += ms; }
  int64_t now() const { return now_.load(); }

  template <typename T>
  Result<T> run(std::function<Result<T>(WriteTxn&)> body) {
    return writer_->submit<T>(std::move(body)).wait(ws_);
  }

  TopicRecord create(const std::string& name, TopicSettings settings = {}) {
    auto created = run<TopicRecord>([&](WriteTxn& txn) { return txn.createTopic(name, settings); });
    REQUIRE(created.status().toString() == "ok");
    return created.value();
  }

  Result<std::vector<PublishAckData>> publish(const std::string& topic,
                                              std::vector<MessageData> batch) {
    return run<std::vector<PublishAckData>>(
        [&](WriteTxn& txn) { return txn.append(topic, batch); });
  }

  // Publishes and returns the offsets (duplicates included), requiring success.
  std::vector<Offset> publishOk(const std::string& topic, std::vector<MessageData> batch) {
    auto acks = publish(topic, std::move(batch));
    REQUIRE(acks.status().toString() == "ok");
    std::vector<Offset> offsets;
    for (const auto& ack : acks.value())
      offsets.push_back(ack.offset);
    return offsets;
  }

  TopicRecord topic(const std::string& name) {
    ReadTxn read(*env_);
    auto found = read.topic(name);
    REQUIRE(found.has_value());
    return *found;
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

  // Writes one raw key/value with LMDB, bypassing the store (for corruption tests).
  void putRaw(MDB_dbi dbi, const std::string& key, const std::string& value) {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env_->raw(), nullptr, 0, &txn) == 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
  }

 private:
  TempDir dir_;
  kj::EventLoop loop_;
  kj::WaitScope ws_{loop_};
  EnvOptions options_;
  std::atomic<int64_t> now_{kStartMs};
  std::unique_ptr<Env> env_;
  std::unique_ptr<Writer> writer_;
};

// Holds the writer thread inside a job so that the jobs submitted meanwhile queue up and are
// committed together once it is released.
class Gate {
 public:
  // Submits the holding job and returns once the writer is running it.
  explicit Gate(TestStore& store) : store_(store) {
    held_ = store.writer().submit<Done>([this](WriteTxn&) -> Result<Done> {
      entered_.set_value();
      released_.wait();
      return Done{};
    });
    entered_.get_future().wait();
  }
  ~Gate() { release(); }
  void release() {
    if (open_) return;
    open_ = true;
    release_.set_value();
    auto done = held_.wait(store_.ws());
    CHECK(done.ok());
  }

 private:
  TestStore& store_;
  std::promise<void> entered_;
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  kj::Promise<Result<Done>> held_ = nullptr;
  bool open_ = false;
};

}  // namespace sluice::store::test
