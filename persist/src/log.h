// log.h: persist/'s logging, kept to one translation unit (spdlog is heavy to compile).
//
// persist/ logs through its own named spdlog logger, "shmbus", to stderr (stdout belongs
// to the program's own output, e.g. a `shmbus tail` in the same process).  It never
// touches spdlog's default logger: that one is the program's.  Its level comes from
// $SPDLOG_LEVEL ("warn", or "shmbus=warn" for this logger alone), read when persist/
// first logs.  A program that registers a logger named "shmbus" first keeps it as is.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace shmbus::persist::detail {

inline constexpr const char* kLoggerName = "shmbus";

spdlog::logger& logger();
void log_error(const std::string& msg);
void log_warn(const std::string& msg);
void log_info(const std::string& msg);

// The level that SPDLOG_LEVEL-style `text` ("info", "shmbus=warn,off", ...) gives the
// logger `name` (a spdlog::level::level_enum; int keeps spdlog out of this header): its
// own entry, else the global one; nullopt when it names neither.
std::optional<int> env_level(std::string_view text, std::string_view name);
// Sets `l`'s level from $SPDLOG_LEVEL (only `l`'s).
void apply_env_level(spdlog::logger& l);

}  // namespace shmbus::persist::detail
