#pragma once

// Consumer groups as durable cursors: creating one at a start position, resetting and
// deleting it. Delivery to a group's consumers is delivery.h's. Thread: kj.

#include <string>
#include <string_view>
#include <vector>

#include <kj/async.h>

#include "core/context.h"

namespace sluice::core {

class Groups {
 public:
  explicit Groups(Context& ctx) : ctx_(ctx) {}

  // Finds the group, or creates it at `start` (key-ordered if asked, with the subject
  // `filter` if given) and adds its PutGroupOp to `batch`. Errors: kInvalidArgument (bad name,
  // start or filter, or key ordering or a filter asked of a group that exists without it),
  // kLimitExceeded (groups per topic).
  Result<Group*> ensure(WriteBatch& batch, Topic& topic, std::string_view group,
                        const StartAt& start, bool keyOrdered = false,
                        const std::vector<std::string>& filter = {});
  // Creates the group unless it exists; answers after the commit.
  kj::Promise<Result<Done>> create(std::string topic, std::string group, StartAt start,
                                   bool keyOrdered = false, std::vector<std::string> filter = {});
  // Moves a group without consumers to `to` and forgets its pending entries.
  // Errors: kInvalidArgument, kTopicNotFound, kGroupNotFound, kGroupBusy, kStorageFailed.
  kj::Promise<Result<Done>> reset(std::string topic, std::string group, StartAt to);
  // Deletes a group without consumers; answers the number of pending entries it dropped.
  kj::Promise<Result<uint64_t>> remove(std::string topic, std::string group);

 private:
  Result<Offset> resolveStart(const Topic& topic, const StartAt& start);
  Status busy(const Group& group, const char* action) const;

  Context& ctx_;
};

}  // namespace sluice::core
