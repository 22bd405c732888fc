// log.cc: spdlog behind log.h.
#include "log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace shmbus::persist::detail {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto existing = spdlog::get("shmbus");
    return existing ? existing : spdlog::stderr_color_mt("shmbus");
  }();
  return *l;
}

void log_warn(const std::string& msg) { logger().warn("shmbus persist: {}", msg); }
void log_error(const std::string& msg) { logger().error("shmbus persist: {}", msg); }
void log_info(const std::string& msg) { logger().info("shmbus persist: {}", msg); }

}  // namespace shmbus::persist::detail
