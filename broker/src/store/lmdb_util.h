#pragma once

// Small LMDB helpers shared by the store's .cpp files: views over MDB_val, a cursor guard,
// error mapping, and the module's logger. Internal to store/.

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace sluice::store {

class Env;

// The "store" logger (created by main; a stderr logger is created if main has not).
std::shared_ptr<spdlog::logger> storeLog();

// Logs a broken store invariant and aborts: carrying on risks durable data.
[[noreturn]] void brokenInvariant(const std::string& what);

// MDB_MAP_FULL -> kStorageFull, anything else -> kStorageFailed; `what` names the operation.
Status lmdbStatus(int rc, std::string_view what);

// An LMDB failure inside a write job. Thrown by the helpers below; the writer aborts the
// job's transaction and answers the job with status().
class LmdbError : public std::runtime_error {
 public:
  LmdbError(int rc, std::string_view what);
  int rc() const { return rc_; }
  const Status& status() const { return status_; }

 private:
  int rc_;
  Status status_;
};

inline MDB_val toVal(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view toView(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}
inline bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Owns an MDB_cursor. Throws LmdbError when LMDB fails (MDB_NOTFOUND is not a failure).
class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi);
  ~Cursor() { mdb_cursor_close(cursor_); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // Positions the cursor; false on MDB_NOTFOUND. `key` is only read for SET/SET_RANGE.
  bool get(MDB_cursor_op op, std::string_view key = {});
  bool first() { return get(MDB_FIRST); }
  bool next() { return get(MDB_NEXT); }
  bool last() { return get(MDB_LAST); }
  bool seek(std::string_view key) { return get(MDB_SET_RANGE, key); }  // first key >= `key`
  std::string_view key() const { return toView(key_); }
  std::string_view value() const { return toView(value_); }
  bool find(std::string_view key) { return get(MDB_SET, key); }  // exactly `key`
  // Deletes the current entry; next() then yields the entry after it.
  void del();
  // Writes `key` (LMDB starts its search on the cursor's page); false when MDB_NOOVERWRITE
  // finds the key, the cursor then on it.
  bool put(std::string_view key, std::string_view value, unsigned flags = 0);

 private:
  MDB_cursor* cursor_ = nullptr;
  MDB_val key_{0, nullptr};
  MDB_val value_{0, nullptr};
};

// Point operations; throw LmdbError on failure.
bool getValue(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view* value);
void putValue(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
              unsigned flags = 0);
bool deleteKey(MDB_txn* txn, MDB_dbi dbi, std::string_view key);
// Deletes every key that starts with `prefix` and, if `below` is non-empty, is < `below`.
uint64_t deletePrefix(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix,
                      std::string_view below = {});

// Runs `body` for a WriteTxn method: an LmdbError is recorded in (`rc`, `error`), so the writer
// rolls the job back even if the job ignores it, and rethrown.
template <typename Body>
auto recordingErrors(int& rc, Status& error, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const LmdbError& e) {
    if (error.ok()) {
      rc = e.rc();
      error = e.status();
    }
    throw;
  }
}

// The same for methods returning Result<T>: the error is returned instead of rethrown.
template <typename T, typename Body>
Result<T> resultRecordingErrors(int& rc, Status& error, Body&& body) {
  try {
    return body();
  } catch (const LmdbError& e) {
    if (error.ok()) {
      rc = e.rc();
      error = e.status();
    }
    return e.status();
  }
}

// Pages (branch + leaf + overflow) of all of the store's databases, in bytes.
uint64_t usedBytesIn(MDB_txn* txn, const Env& env);

}  // namespace sluice::store
