#pragma once

// Operations on one topic inside a write transaction, shared by the WriteTxn .cpp files.
// They throw LmdbError on LMDB failures. Internal to store/.

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/records.h"
#include "common/status.h"

namespace sluice::store {

class Env;

std::optional<TopicRecord> loadTopic(MDB_txn* txn, const Env& env, std::string_view name);
void storeTopic(MDB_txn* txn, const Env& env, const TopicRecord& topic);
// Creates the topic with the next free id. Errors: kTopicExists, kLimitExceeded (ids used up).
Result<TopicRecord> createTopicIn(MDB_txn* txn, const Env& env, std::string_view name,
                                  const TopicSettings& settings, int64_t nowMs);
// Removes every pending entry of the topic's groups with offset < below.
void dropPendingBelow(MDB_txn* txn, const Env& env, TopicId topic, Offset below);

}  // namespace sluice::store
