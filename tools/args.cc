// args.cc: see args.h, and fail() of commands.h.
#include "args.h"

#include <pwd.h>

#include <cstdio>

#include "commands.h"
#include "format.h"
#include "shmbus/shmbus.h"

namespace shmbus::tools {

void warn(std::string_view message) {
  std::string line = "shmbus: ";
  // One line, whatever the message holds, and nothing a terminal would obey: messages
  // can quote names and paths read from shared memory.  Backslashes stay single: a
  // message quotes what the user typed, and names it quotes are terminal text already.
  line += terminal_text(message, /*escape_backslash=*/false);
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

std::optional<uint32_t> user_flag(std::string_view flag, std::string_view text) {
  const std::string t(text);
  if (!t.empty() && t.find_first_not_of("0123456789") == std::string::npos && t.size() <= 10) {
    const unsigned long long v = std::stoull(t);
    if (v < 0xffffffffULL) return static_cast<uint32_t>(v);
  }
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[4096];
  if (getpwnam_r(t.c_str(), &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_uid;
  flag_error(flag, "no user '" + t + "' (give a user name or a numeric uid)");
  return std::nullopt;
}

std::optional<std::string> delimiter_flag(std::string_view flag, std::string_view text) {
  std::string out;
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    const char e = i + 1 < text.size() ? text[++i] : '\0';
    if (e == 'n') out += '\n';
    else if (e == 't') out += '\t';
    else if (e == 'r') out += '\r';
    else if (e == '0') out += '\0';
    else if (e == '\\') out += '\\';
    else if (e == 'x' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      flag_error(flag, "'" + std::string(text) +
                           "' has an unknown escape (known: \\n \\t \\r \\0 \\\\ \\xNN)");
      return std::nullopt;
    }
  }
  if (out.empty()) {
    flag_error(flag, "the delimiter is empty");
    return std::nullopt;
  }
  return out;
}

}  // namespace shmbus::tools
