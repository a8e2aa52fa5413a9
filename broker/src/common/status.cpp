#include "common/status.h"

#include <capnp/schema.h>

#include "sluice/schemas/rpc.capnp.h"

namespace sluice {

const char* codeName(Code code) {
  if (code == Code::kOk) return "ok";
  auto enumerants = capnp::Schema::from<wire::ErrorCode>().getEnumerants();
  auto index = static_cast<uint16_t>(code);
  if (index >= enumerants.size()) return "unknown";
  return enumerants[index].getProto().getName().cStr();  // Static schema data.
}

std::string Status::toString() const {
  if (ok()) return "ok";
  return std::string(codeName(code_)) + ": " + message_;
}

}  // namespace sluice
