#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"
#include "store/write_log.h"

namespace sluice::store {
namespace {

constexpr unsigned kMaxDbs = 24;  // 14 in use; room for the planned ones (subjects, expiry).

using GroupCounts = std::map<std::pair<TopicId, std::string>, uint64_t>;

// Writes each group's count into its record's `field`.
void storeCounts(MDB_txn* txn, const Env& env, const GroupCounts& counts,
                 uint64_t GroupRecord::*field) {
  for (const auto& [key, count] : counts) {
    std::string groupKey = keys::group(key.first, key.second);
    std::string_view value;
    if (!getValue(txn, env.groups, groupKey, &value)) continue;
    GroupRecord group = codec::decodeGroup(key.first, key.second, value);
    group.*field = count;
    putValue(txn, env.groups, groupKey, codec::bytesOf(codec::encodeGroup(group)));
  }
}

// Format 1 -> 2: the due index and the groups' pending counts, from the pending entries.
void migrateFrom1(MDB_txn* txn, const Env& env) {
  GroupCounts counts;
  Cursor cursor(txn, env.pending);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    auto key = keys::parsePending(cursor.key());
    if (!key) continue;  // Env::check reports it.
    PendingRecord record =
        codec::decodePending(key->topic, key->group, key->offset, cursor.value());
    putValue(txn, env.due, keys::due(key->topic, key->group, record.visibleAtMs, key->offset),
             cursor.value());
    ++counts[{key->topic, key->group}];
  }
  storeCounts(txn, env, counts, &GroupRecord::pending);
}

// Format 2 -> 3: entries held by a consumer (visibleAtMs 0) move from `pending` and their due
// entry at 0 to `held`; waiting entries stay. Counts do not change.
void migrateFrom2(MDB_txn* txn, const Env& env) {
  Cursor cursor(txn, env.pending);
  for (bool ok = cursor.first(); ok;) {
    auto key = keys::parsePending(cursor.key());
    if (!key) {  // Env::check reports it.
      ok = cursor.next();
      continue;
    }
    PendingRecord record =
        codec::decodePending(key->topic, key->group, key->offset, cursor.value());
    if (record.visibleAtMs != 0) {
      ok = cursor.next();
      continue;
    }
    putValue(txn, env.held, cursor.key(), cursor.value());
    deleteKey(txn, env.due, keys::due(key->topic, key->group, 0, key->offset));
    cursor.del();
    ok = cursor.next();
  }
}

// Format 3 or 4 -> 5: groups count their scheduled entries (waiting, never delivered, at a
// time); delayed messages existed since format 3.
void countScheduled(MDB_txn* txn, const Env& env) {
  GroupCounts counts;
  Cursor cursor(txn, env.pending);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    auto key = keys::parsePending(cursor.key());
    if (!key) continue;  // Env::check reports it.
    if (core::isScheduled(
            codec::decodePending(key->topic, key->group, key->offset, cursor.value())))
      ++counts[{key->topic, key->group}];
  }
  storeCounts(txn, env, counts, &GroupRecord::scheduled);
}

// Format 5 -> 6: a parked entry (a key-ordered group's message behind its key, never due)
// has no due entry.
void dropParkedDue(MDB_txn* txn, const Env& env) {
  Cursor cursor(txn, env.due);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    auto key = keys::parseDue(cursor.key());
    if (key && key->visibleAtMs == core::kParkedMs) cursor.del();
  }
}

}  // namespace

Result<std::unique_ptr<Env>> Env::open(const EnvOptions& options) {
  const std::string& dir = options.dir;
  auto failed = [&](int rc, const char* what) {
    return Status(Code::kStorageFailed,
                  std::string(what) + " (store " + dir + "): " + mdb_strerror(rc));
  };
  if (options.maxStorageBytes == 0) {
    return Status(Code::kStorageFailed,
                  "maxStorageBytes must be greater than 0 (store " + dir + ")");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status(Code::kStorageFailed,
                  "cannot create store directory " + dir + ": " + ec.message());
  }

  std::unique_ptr<Env> env(new Env());
  env->options_ = options;
  // One broker per store: LMDB would serialise two writers, but each would keep its own view
  // of offsets and pending deliveries. The lock dies with the process, even on kill -9.
  std::string lockPath = (std::filesystem::path(dir) / "sluiced.lock").string();
  env->lockFd_ = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (env->lockFd_ < 0) {
    return Status(Code::kStorageFailed,
                  "cannot open lock file " + lockPath + ": " + std::strerror(errno));
  }
  if (::flock(env->lockFd_, (options.readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    return Status(Code::kStorageFailed, "store " + dir + " is in use by another process (lock " +
                                            lockPath + ": " + std::strerror(errno) + ")");
  }
  int rc = mdb_env_create(&env->env_);
  if (rc != 0) {
    env->env_ = nullptr;
    return failed(rc, "cannot create LMDB environment");
  }
  if ((rc = mdb_env_set_maxdbs(env->env_, kMaxDbs)) != 0) return failed(rc, "mdb_env_set_maxdbs");
  // The whole storage limit is mapped once and never resized: mdb_env_set_mapsize remaps
  // under open read transactions (see DESIGN.md). The file only grows as pages are used.
  if ((rc = mdb_env_set_mapsize(env->env_, options.maxStorageBytes)) != 0) {
    return failed(rc, "mdb_env_set_mapsize");
  }
  // MDB_NOTLS: read transactions are not tied to threads (the KJ thread and the writer both
  // read). No MDB_WRITEMAP: it turns a full disk into SIGBUS.
  unsigned flags = MDB_NOTLS | (options.syncCommits ? 0u : unsigned{MDB_NOSYNC}) |
                   (options.readOnly ? unsigned{MDB_RDONLY} : 0u);
  if ((rc = mdb_env_open(env->env_, dir.c_str(), flags, 0644)) != 0) {
    return failed(rc, "cannot open LMDB store");
  }

  MDB_txn* txn = nullptr;
  MDB_stat envStat;
  if (mdb_env_stat(env->env_, &envStat) == 0) env->pageSize_ = envStat.ms_psize;
  if ((rc = mdb_txn_begin(env->env_, nullptr, options.readOnly ? MDB_RDONLY : 0, &txn)) != 0) {
    return failed(rc, "cannot begin the opening transaction");
  }
  struct Named {
    const char* name;
    MDB_dbi* dbi;
  };
  Env& e = *env;
  for (Named db :
       {Named{"meta", &e.meta}, Named{"topics", &e.topics}, Named{"messages", &e.messages},
        Named{"groups", &e.groups}, Named{"held", &e.held}, Named{"pending", &e.pending},
        Named{"due", &e.due}, Named{"dedup", &e.dedup}, Named{"dedupExpiry", &e.dedupExpiry},
        Named{"txns", &e.txns}, Named{"txnExpiry", &e.txnExpiry}, Named{"wlog", &e.wlog},
        Named{"wlogSpill", &e.wlogSpill}, Named{"wlogFloor", &e.wlogFloor},
        Named{"auth", &e.auth}}) {
    if ((rc = mdb_dbi_open(txn, db.name, options.readOnly ? 0 : MDB_CREATE, db.dbi)) != 0) {
      mdb_txn_abort(txn);
      return failed(rc, (std::string("cannot open database ") + db.name).c_str());
    }
  }

  try {
    std::string_view stored;
    if (getValue(txn, e.meta, keys::kFormatVersion, &stored)) {
      if (stored.size() != 4) {
        mdb_txn_abort(txn);
        return Status(Code::kStorageFailed, "store " + dir + " has an unreadable format version (" +
                                                std::to_string(stored.size()) + " bytes)");
      }
      const uint32_t storedVersion = keys::readU32(stored.data());
      uint32_t version = storedVersion;
      if (version == 1 && !options.readOnly) {
        migrateFrom1(txn, e);
        version = 2;
      }
      if (version == 2 && !options.readOnly) {
        migrateFrom2(txn, e);
        version = 3;
      }
      if ((version == 3 || version == 4) && !options.readOnly) {
        // 4 adds `txns` and `txnExpiry`, created empty above; 5 adds time-to-live fields and
        // key-ordered groups, which older records read as "none". Bumped so that an older
        // broker, which would deliver expired messages and ignore key order, refuses it.
        countScheduled(txn, e);
        version = 5;
      }
      if (version == 5 && !options.readOnly) {
        dropParkedDue(txn, e);
        version = 6;
      }
      if (version == 6 && !options.readOnly) {
        // 7 adds subject patterns, message subjects and group filters, which older records
        // read as "none". Bumped so that an older broker, which would ignore a group's filter
        // and route nothing, refuses it.
        version = 7;
      }
      if (version == 7 && !options.readOnly) {
        // 8 adds `auth`, created empty above. Bumped so that an older broker, which would
        // ignore every principal and let anyone in, refuses it.
        version = 8;
      }
      if (version != storedVersion && version == keys::kCurrentFormatVersion)
        putValue(txn, e.meta, keys::kFormatVersion, keys::u32(keys::kCurrentFormatVersion));
      if (version != keys::kCurrentFormatVersion) {
        mdb_txn_abort(txn);
        return Status(Code::kStorageFailed,
                      "store " + dir + " has format version " + std::to_string(version) +
                          (version > keys::kCurrentFormatVersion ? ", newer than" : ", unlike") +
                          " this broker's (" + std::to_string(keys::kCurrentFormatVersion) + ")");
      }
    } else if (!options.readOnly) {
      putValue(txn, e.meta, keys::kFormatVersion, keys::u32(keys::kCurrentFormatVersion));
    }
    if (!options.readOnly) openLog(txn, e);
    e.setUsedBytes(usedBytesIn(txn, e));
  } catch (const LmdbError& err) {
    mdb_txn_abort(txn);
    return Status(Code::kStorageFailed, err.status().message() + " (store " + dir + ")");
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return failed(rc, "cannot commit the opening transaction");
  return Result<std::unique_ptr<Env>>(std::move(env));
}

Env::~Env() {
  if (env_ != nullptr) {
    // Under MDB_NOSYNC the last commits may still be only in the page cache.
    if (!options_.syncCommits) mdb_env_sync(env_, 1);
    mdb_env_close(env_);
  }
  if (lockFd_ >= 0) ::close(lockFd_);  // Released only once LMDB is closed.
}

uint64_t Env::publishLimitBytes() const {
  uint64_t max = options_.maxStorageBytes;
  uint64_t reserve = options_.reserveBytes;
  if (reserve == 0) {
    reserve = std::min<uint64_t>(std::max<uint64_t>(1u << 20, max / 20), uint64_t{256} << 20);
  }
  return max > reserve ? max - reserve : 0;
}

}  // namespace sluice::store
