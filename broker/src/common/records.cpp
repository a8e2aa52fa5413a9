#include "common/records.h"

namespace sluice {

uint64_t MessageData::accountedBytes() const {
  uint64_t n = payload.size() + (key ? key->size() : 0);
  for (const auto& [k, v] : headers)
    n += k.size() + v.size();
  return n;
}

}  // namespace sluice
