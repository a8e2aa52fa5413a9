#include "common/status.h"

namespace sluice {

const char* codeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalidArgument";
    case Code::kTopicNotFound:
      return "topicNotFound";
    case Code::kGroupNotFound:
      return "groupNotFound";
    case Code::kMessageTooLarge:
      return "messageTooLarge";
    case Code::kStorageFull:
      return "storageFull";
    case Code::kStorageFailed:
      return "storageFailed";
    case Code::kTopicExists:
      return "topicExists";
    case Code::kNotPending:
      return "notPending";
    case Code::kGroupBusy:
      return "groupBusy";
    case Code::kLimitExceeded:
      return "limitExceeded";
    case Code::kShuttingDown:
      return "shuttingDown";
  }
  return "unknown";
}

std::string Status::toString() const {
  if (ok()) return "ok";
  return std::string(codeName(code_)) + ": " + message_;
}

}  // namespace sluice
