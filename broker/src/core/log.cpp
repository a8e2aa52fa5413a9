#include "core/log.h"

namespace sluice::core {

std::shared_ptr<spdlog::logger> coreLog() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto named = spdlog::get("core");
    return named ? named : spdlog::default_logger();
  }();
  return logger;
}

}  // namespace sluice::core
