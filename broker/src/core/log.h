#pragma once

#include <memory>

#include "common/log.h"

namespace sluice::core {

inline std::shared_ptr<spdlog::logger> coreLog() {
  return namedLog("core");
}

}  // namespace sluice::core
