// log.h: persist/'s logging, kept to one translation unit (spdlog is heavy to compile).
#pragma once

#include <string>

namespace spdlog {
class logger;
}

namespace shmbus::persist::detail {

// persist/'s logger: to stderr (stdout belongs to the program's own output, e.g. a
// `shmbus tail` in the same process), level from $SPDLOG_LEVEL as usual.
spdlog::logger& logger();
void log_error(const std::string& msg);
void log_warn(const std::string& msg);
void log_info(const std::string& msg);

}  // namespace shmbus::persist::detail
