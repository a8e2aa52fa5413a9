#include "sluice/error.h"

#include <capnp/schema.h>

#include "sluice/schemas/rpc.capnp.h"

namespace sluice {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kDisconnected:
      return "disconnected";
    case ErrorCode::kConnectFailed:
      return "connectFailed";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kInternal:
      return "internal";
    default:
      break;
  }
  // The broker's codes: named by the schema.
  auto enumerants = capnp::Schema::from<wire::ErrorCode>().getEnumerants();
  auto index = static_cast<unsigned>(code);
  if (index == 0 || index > static_cast<unsigned>(ErrorCode::kNotEnoughReplicas) ||
      index >= enumerants.size()) {
    return "unknown";  // A value cast from an integer outside the enum.
  }
  return enumerants[index].getProto().getName().cStr();  // Static schema data.
}

std::string Error::toString() const {
  std::string out = errorCodeName(code);
  out += ": ";
  out += message;
  return out;
}

}  // namespace sluice
