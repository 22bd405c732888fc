// args.h: turning option strings into values, with messages that name the option.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shmbus::tools {

// Each returns nullopt after printing "shmbus: --flag: <why>" (see fail()).
std::optional<uint64_t> size_flag(std::string_view flag, std::string_view text);
std::optional<std::chrono::nanoseconds> duration_flag(std::string_view flag, std::string_view text);
// "0600", "644", "0o640": octal permission bits, at most 0777.
std::optional<uint32_t> mode_flag(std::string_view flag, std::string_view text);
// A user: a name from the password database, or a numeric uid.
std::optional<uint32_t> user_flag(std::string_view flag, std::string_view text);

}  // namespace shmbus::tools
