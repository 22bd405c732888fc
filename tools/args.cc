// args.cc: see args.h, and fail() of commands.h.
#include "args.h"

#include <cstdio>

#include "commands.h"
#include "shmbus/shmbus.h"

namespace shmbus::tools {

void warn(std::string_view message) {
  std::string line = "shmbus: ";
  // One line, whatever the message holds.
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

int fail(std::string_view message, int code) {
  std::fflush(stdout);
  warn(message);
  return code;
}

int fail(const Error& e) {
  return fail(e.message, e.code == Errc::kInvalidArgument ? kExitUsage : kExitFailure);
}

static void flag_error(std::string_view flag, std::string_view why) {
  fail(std::string(flag) + ": " + std::string(why), kExitUsage);
}

std::optional<uint64_t> size_flag(std::string_view flag, std::string_view text) {
  auto r = parse_size(text);
  if (!r) {
    flag_error(flag, r.error().message);
    return std::nullopt;
  }
  return r.value();
}

std::optional<std::chrono::nanoseconds> duration_flag(std::string_view flag, std::string_view text) {
  auto r = parse_duration(text);
  if (!r) {
    flag_error(flag, r.error().message);
    return std::nullopt;
  }
  return r.value();
}

std::optional<uint32_t> mode_flag(std::string_view flag, std::string_view text) {
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O'))
    digits.remove_prefix(2);
  uint32_t mode = 0;
  bool ok = !digits.empty() && digits.size() <= 4;
  for (char c : digits) {
    if (c < '0' || c > '7') {
      ok = false;
      break;
    }
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  if (!ok || mode > 0777) {
    flag_error(flag, "mode '" + std::string(text) +
                         "' is not octal permission bits from 0 to 0777 (examples: 0600, 0640)");
    return std::nullopt;
  }
  return mode;
}

}  // namespace shmbus::tools
