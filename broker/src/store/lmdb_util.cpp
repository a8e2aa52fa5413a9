#include "store/lmdb_util.h"

#include "common/log.h"

#include <cstdlib>

#include "store/store.h"

namespace sluice::store {

std::shared_ptr<spdlog::logger> storeLog() {
  return namedLog("store");
}

void brokenInvariant(const std::string& what) {
  storeLog()->critical("broken store invariant: {}", what);
  storeLog()->flush();
  std::abort();
}

Status lmdbStatus(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) {
    return Status(Code::kStorageFull,
                  std::string(what) + ": storage is full (the LMDB map has no free pages)");
  }
  return Status(Code::kStorageFailed, std::string(what) + ": " + mdb_strerror(rc));
}

LmdbError::LmdbError(int rc, std::string_view what)
    : std::runtime_error(lmdbStatus(rc, what).message()), rc_(rc), status_(lmdbStatus(rc, what)) {}

Cursor::Cursor(MDB_txn* txn, MDB_dbi dbi) {
  int rc = mdb_cursor_open(txn, dbi, &cursor_);
  if (rc != 0) throw LmdbError(rc, "open cursor");
}

bool Cursor::get(MDB_cursor_op op, std::string_view key) {
  if (op == MDB_SET || op == MDB_SET_RANGE || op == MDB_SET_KEY) key_ = toVal(key);
  int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) throw LmdbError(rc, "read cursor");
  return true;
}

void Cursor::del() {
  int rc = mdb_cursor_del(cursor_, 0);
  if (rc != 0) throw LmdbError(rc, "delete");
}

bool Cursor::put(std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = toVal(key);
  MDB_val v = toVal(value);
  int rc = mdb_cursor_put(cursor_, &k, &v, flags);
  if (rc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE) != 0) {
    key_ = k;
    value_ = v;  // What it holds.
    return false;
  }
  if (rc != 0) throw LmdbError(rc, "put");
  return true;
}

bool getValue(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view* value) {
  MDB_val k = toVal(key);
  MDB_val v{0, nullptr};
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) throw LmdbError(rc, "get");
  if (value != nullptr) *value = toView(v);
  return true;
}

void putValue(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
              unsigned flags) {
  MDB_val k = toVal(key);
  MDB_val v = toVal(value);
  int rc = mdb_put(txn, dbi, &k, &v, flags);
  if (rc != 0) throw LmdbError(rc, "put");
}

bool deleteKey(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = toVal(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) throw LmdbError(rc, "delete");
  return true;
}

uint64_t deletePrefix(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix, std::string_view below) {
  Cursor cursor(txn, dbi);
  uint64_t n = 0;
  for (bool ok = cursor.seek(prefix); ok; ok = cursor.next()) {
    std::string_view key = cursor.key();
    if (!startsWith(key, prefix)) break;
    if (!below.empty() && key >= below) break;
    cursor.del();
    ++n;
  }
  return n;
}

uint64_t usedBytesIn(MDB_txn* txn, const Env& env) {
  uint64_t total = 0;
  for (MDB_dbi dbi :
       {env.meta, env.topics, env.messages, env.groups, env.held, env.pending, env.due, env.dedup,
        env.dedupExpiry, env.txns, env.txnExpiry, env.wlog, env.wlogSpill, env.wlogFloor}) {
    MDB_stat st;
    int rc = mdb_stat(txn, dbi, &st);
    if (rc != 0) throw LmdbError(rc, "stat");
    total += (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * uint64_t{st.ms_psize};
  }
  return total;
}

}  // namespace sluice::store
