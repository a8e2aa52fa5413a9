#include "store/store.h"

#include <cstdio>

#include "store/lmdb_util.h"

// Env::dump: a logical dump of the state databases (`sluiced --dump`), for comparing stores
// independently of their page layout (replay equivalence).

namespace sluice::store {
namespace {

void hex(std::FILE* out, std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  for (unsigned char c : bytes) {
    std::fputc(digits[c >> 4], out);
    std::fputc(digits[c & 15], out);
  }
}

}  // namespace

Status Env::dump(std::FILE* out) const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return lmdbStatus(rc, "dump: begin read transaction");
  struct Named {
    const char* name;
    MDB_dbi dbi;
  };
  Status status;
  try {
    // Not the write log (wlog, wlogSpill, wlogFloor): how much of it is kept is a local setting.
    for (Named db : {Named{"meta", meta}, Named{"topics", topics}, Named{"messages", messages},
                     Named{"groups", groups}, Named{"held", held}, Named{"pending", pending},
                     Named{"due", due}, Named{"dedup", dedup}, Named{"dedupExpiry", dedupExpiry},
                     Named{"txns", txns}, Named{"txnExpiry", txnExpiry}, Named{"auth", auth}}) {
      Cursor cursor(txn, db.dbi);
      for (bool ok = cursor.first(); ok; ok = cursor.next()) {
        std::fprintf(out, "%s ", db.name);
        hex(out, cursor.key());
        std::fputc(' ', out);
        hex(out, cursor.value());
        std::fputc('\n', out);
      }
    }
  } catch (const LmdbError& e) {
    status = Status(Code::kStorageFailed, "dump: " + e.status().message());
  }
  mdb_txn_abort(txn);
  return status;
}

}  // namespace sluice::store
