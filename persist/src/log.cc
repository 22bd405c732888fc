// log.cc: spdlog behind log.h.
#include "log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdlib>
#include <string_view>

namespace shmbus::persist::detail {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<int> env_level(std::string_view text, std::string_view name) {
  if (text.size() > 512) return std::nullopt;  // as spdlog::cfg does
  std::optional<int> global, named;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    std::string_view key, value = item;
    if (const size_t eq = item.find('='); eq != std::string_view::npos) {
      key = trim(item.substr(0, eq));
      value = item.substr(eq + 1);
    }
    std::string v(trim(value));
    for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto level = spdlog::level::from_str(v);
    if (level == spdlog::level::off && v != "off") continue;  // not a level name
    if (key.empty()) global = level;
    else if (key == name) named = level;
  }
  return named ? named : global;
}

void apply_env_level(spdlog::logger& l) {
  const char* text = std::getenv("SPDLOG_LEVEL");
  if (!text) return;
  if (auto level = env_level(text, l.name())) l.set_level(static_cast<spdlog::level::level_enum>(*level));
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto existing = spdlog::get(kLoggerName);
    if (existing) return existing;  // the program made it: its settings stand
    auto made = spdlog::stderr_color_mt(kLoggerName);
    apply_env_level(*made);
    return made;
  }();
  return *l;
}

void log_warn(const std::string& msg) { logger().warn("shmbus persist: {}", msg); }
void log_error(const std::string& msg) { logger().error("shmbus persist: {}", msg); }
void log_info(const std::string& msg) { logger().info("shmbus persist: {}", msg); }

}  // namespace shmbus::persist::detail
