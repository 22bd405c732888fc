// log.cc: spdlog behind log.h.
#include "log.h"

#include <spdlog/spdlog.h>

namespace shmbus::persist::detail {

void log_warn(const std::string& msg) { spdlog::warn("shmbus persist: {}", msg); }
void log_info(const std::string& msg) { spdlog::info("shmbus persist: {}", msg); }

}  // namespace shmbus::persist::detail
