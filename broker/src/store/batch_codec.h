#pragma once

// The write log's batch encoding (WriteBatch in schemas/records.capnp). Two forms:
// - shipped: every op complete, message bodies inline (what readLog and shipLog return, what
//   a follower applies);
// - stored: an append's message bodies left out, because they are in the `messages` database
//   (or, once removed, in `wlogSpill`); a single broker thus writes each payload once.
// Internal to store/ (others go through ReadTxn::shipLog and decodeShipped).

#include <capnp/common.h>
#include <kj/array.h>

#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "core/write_ops.h"

namespace sluice::store::codec {

enum class BatchForm { kShipped, kStored };

// Messages one append may hold: far above what one publish carries (core's maxBatchMessages,
// 10,000), and a bound on what a corrupt count can make the decoder allocate.
constexpr uint32_t kMaxAppendMessages = 1u << 16;

kj::Array<capnp::word> encodeBatch(uint64_t seq, const core::WriteBatch& batch, BatchForm form,
                                   int64_t loggedAtMs = 0);

// A stored append, before its bodies are filled in: which messages it wrote.
struct StoredAppendRef {
  size_t op = 0;  // Index in the batch.
  TopicId topic = 0;
  Offset firstOffset = 0;
  uint32_t count = 0;
};

// Decodes either form. A truncated, corrupt or inconsistent encoding (unknown op, a name that
// is not a valid topic or group name, offset 0, a stored append without a count) is rejected
// with kInvalidArgument naming what is wrong, and nothing is returned. Fields this version
// does not know are ignored. For the stored form, `refs` receives the appends whose bodies
// the caller fills in from the store; their `messages` hold only the dedup expiries.
Result<core::LoggedBatch> decodeBatch(std::string_view bytes,
                                      std::vector<StoredAppendRef>* refs = nullptr);
// Only the batch's loggedAtMs, without decoding its ops. Errors as decodeBatch.
Result<int64_t> loggedAtMsOf(std::string_view bytes);

}  // namespace sluice::store::codec
