#include "sluice/error.h"

namespace sluice {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalidArgument";
    case ErrorCode::kTopicNotFound:
      return "topicNotFound";
    case ErrorCode::kGroupNotFound:
      return "groupNotFound";
    case ErrorCode::kMessageTooLarge:
      return "messageTooLarge";
    case ErrorCode::kStorageFull:
      return "storageFull";
    case ErrorCode::kStorageFailed:
      return "storageFailed";
    case ErrorCode::kTopicExists:
      return "topicExists";
    case ErrorCode::kNotPending:
      return "notPending";
    case ErrorCode::kGroupBusy:
      return "groupBusy";
    case ErrorCode::kLimitExceeded:
      return "limitExceeded";
    case ErrorCode::kShuttingDown:
      return "shuttingDown";
    case ErrorCode::kDisconnected:
      return "disconnected";
    case ErrorCode::kConnectFailed:
      return "connectFailed";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kInternal:
      return "internal";
  }
  // A value cast from an integer outside the enum; never produced by the library.
  return "unknown";
}

std::string Error::toString() const {
  std::string out = errorCodeName(code);
  out += ": ";
  out += message;
  return out;
}

}  // namespace sluice
