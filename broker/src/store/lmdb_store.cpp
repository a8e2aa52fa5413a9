#include "store/store.h"

#include "store/backup.h"

// LmdbStore: core::Store over Env, ReadTxn and Writer.

namespace sluice::store {

core::StoredState LmdbStore::load() {
  return ReadTxn(env_).load();
}

std::unique_ptr<core::StoreSnapshot> LmdbStore::snapshot() {
  return std::make_unique<ReadTxn>(env_);
}

kj::Promise<Result<uint64_t>> LmdbStore::commit(core::WriteBatch batch) {
  return writer_.commit(std::move(batch));
}

void LmdbStore::commitDetached(core::WriteBatch batch, const char* what) {
  writer_.commitDetached(std::move(batch), what);
}

uint64_t LmdbStore::estimateAppendBytes(const std::vector<MessageData>& messages) const {
  // Values past about half a page go to their own overflow pages; B-tree leaves run about two
  // thirds full.
  const unsigned pageSize = env_.pageSize();
  uint64_t total = 0;
  for (const MessageData& m : messages) {
    uint64_t value = m.accountedBytes() + 16 * m.headers.size() + m.id.size() + 64;
    uint64_t node = value + 12 + 8;  // key + node header
    if (node > pageSize / 2 - 64) {
      total += (value + 16 + pageSize - 1) / pageSize * pageSize + 64;
    } else {
      total += node * 3 / 2;
    }
    if (!m.id.empty()) total += (2 * m.id.size() + 64) * 3 / 2;  // dedup + dedupExpiry
  }
  return total;
}

core::StoreStats LmdbStore::stats() const {
  WriterStats writer = writer_.stats();
  return core::StoreStats{writer.commits, writer.batches, writer.lastSeq};
}

Result<std::unique_ptr<core::BackupCopy>> LmdbStore::backup() {
  auto copy = CompactCopy::start(env_);
  if (!copy.ok()) return copy.status();
  return std::unique_ptr<core::BackupCopy>(std::move(copy).value());
}

}  // namespace sluice::store
