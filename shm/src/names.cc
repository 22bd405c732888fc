// names.cc: names, sizes, durations, start positions: everything parsed from users.
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <ctime>

#include "shmbus/shmbus.h"

namespace shmbus {

const char* errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kExists: return "exists";
    case Errc::kIncompatible: return "incompatible format";
    case Errc::kCorrupt: return "corrupt";
    case Errc::kTruncated: return "truncated";
    case Errc::kNoSpace: return "no space";
    case Errc::kPermission: return "permission denied";
    case Errc::kBusy: return "busy";
    case Errc::kTimeout: return "timeout";
    case Errc::kTooLarge: return "too large";
    case Errc::kFull: return "full";
    case Errc::kClosed: return "closed";
    case Errc::kIo: return "I/O error";
  }
  return "unknown";
}

Result<void> validate_name(std::string_view what, std::string_view name) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kInvalidArgument,
                      std::string(what) + " name '" + std::string(name) + "' " + why +
                          " (allowed: 1-100 of A-Z a-z 0-9 . _ -, not '.' or '..')");
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 100) return bad("is longer than 100 characters");
  if (name == "." || name == "..") return bad("is not allowed");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return bad("contains a character that is not allowed");
  }
  return {};
}

std::string resolve_namespace(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("SHMBUS_NAMESPACE"); env && *env) return env;
  return "default";
}

std::string object_name(std::string_view ns, std::string_view stream) {
  return "shmbus." + std::string(ns) + "." + std::string(stream);
}

static bool parse_u64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Result<uint64_t> parse_size(std::string_view text) {
  std::string_view num = text;
  uint64_t mult = 1;
  if (!num.empty()) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(num.back())));
    if (c == 'B' && num.size() > 1) {
      num.remove_suffix(1);
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(num.back())));
      if (c == 'I' && num.size() > 1) {  // KiB, MiB, GiB
        num.remove_suffix(1);
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(num.back())));
      }
    }
    int shift = c == 'K' ? 10 : c == 'M' ? 20 : c == 'G' ? 30 : c == 'T' ? 40 : 0;
    if (shift) {
      mult = 1ULL << shift;
      num.remove_suffix(1);
    }
  }
  uint64_t v = 0;
  if (!parse_u64(num, &v) || (v != 0 && v > UINT64_MAX / mult))
    return make_error(Errc::kInvalidArgument,
                      "size '" + std::string(text) + "' is not a size (examples: 4096, 64K, 16M, 1G)");
  return v * mult;
}

Result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  static constexpr struct { const char* suffix; uint64_t ns; } kUnits[] = {
      {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000ULL},
      {"m", 60000000000ULL}, {"h", 3600000000000ULL}, {"d", 86400000000000ULL}};
  std::string_view num = text;
  uint64_t mult = 1000000000ULL;
  for (const auto& u : kUnits) {
    std::string_view suf(u.suffix);
    if (num.size() > suf.size() && num.substr(num.size() - suf.size()) == suf &&
        std::isdigit(static_cast<unsigned char>(num[num.size() - suf.size() - 1]))) {
      num.remove_suffix(suf.size());
      mult = u.ns;
      break;
    }
  }
  uint64_t v = 0;
  if (!parse_u64(num, &v) || (v != 0 && v > UINT64_MAX / mult / 2))
    return make_error(Errc::kInvalidArgument, "duration '" + std::string(text) +
                                                  "' is not a duration (examples: 500ms, 2s, 1m, 1h)");
  return std::chrono::nanoseconds(static_cast<int64_t>(v * mult));
}

uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// "2026-11-25T13:00:00[.fffffffff][Z]" (UTC) -> ns since the epoch.
static bool parse_iso8601(std::string_view s, uint64_t* out) {
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s.remove_suffix(1);
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return false;
  uint64_t y, mo, d, h, mi, se;
  if (!parse_u64(s.substr(0, 4), &y) || !parse_u64(s.substr(5, 2), &mo) ||
      !parse_u64(s.substr(8, 2), &d) || !parse_u64(s.substr(11, 2), &h) ||
      !parse_u64(s.substr(14, 2), &mi) || !parse_u64(s.substr(17, 2), &se))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1970) return false;
  uint64_t frac = 0;
  if (s.size() > 19) {
    if (s[19] != '.' || s.size() == 20 || s.size() > 29) return false;
    std::string digits(s.substr(20));
    digits.resize(9, '0');
    if (!parse_u64(digits, &frac)) return false;
  }
  std::tm tm{};
  tm.tm_year = static_cast<int>(y) - 1900;
  tm.tm_mon = static_cast<int>(mo) - 1;
  tm.tm_mday = static_cast<int>(d);
  tm.tm_hour = static_cast<int>(h);
  tm.tm_min = static_cast<int>(mi);
  tm.tm_sec = static_cast<int>(se);
  time_t t = timegm(&tm);
  if (t < 0) return false;
  *out = static_cast<uint64_t>(t) * 1000000000ULL + frac;
  return true;
}

Result<StartFrom> parse_start(std::string_view text) {
  if (text == "earliest") return StartFrom::earliest();
  if (text == "latest") return StartFrom::latest();
  uint64_t v = 0;
  if (!text.empty() && text[0] == '@') {
    std::string_view t = text.substr(1);
    if (parse_u64(t, &v) || parse_iso8601(t, &v)) return StartFrom::time_ns(v);
  } else if (parse_u64(text, &v)) {
    return StartFrom::seq(v);
  }
  return make_error(Errc::kInvalidArgument,
                    "start '" + std::string(text) +
                        "' is not earliest, latest, a sequence number or @TIME "
                        "(ns since the epoch or 2026-11-25T13:00:00Z)");
}

}  // namespace shmbus
