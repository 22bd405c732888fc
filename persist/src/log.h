// log.h: persist/'s logging, kept to one translation unit (spdlog is heavy to compile).
#pragma once

#include <string>

namespace shmbus::persist::detail {

void log_warn(const std::string& msg);
void log_info(const std::string& msg);

}  // namespace shmbus::persist::detail
