// names.cc: names, sizes, durations, start positions: everything parsed from users.
#include <algorithm>
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
  // K, M, G, T (any case) and KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB, TB
  // are powers of 1000 (as disks and network links count); B or nothing: bytes.
  std::string_view num = text;
  uint64_t unit = 1;
  auto upper = [](char ch) { return static_cast<char>(std::toupper(static_cast<unsigned char>(ch))); };
  auto scale = [](char c, uint64_t base) -> uint64_t {
    const int power = c == 'K' ? 1 : c == 'M' ? 2 : c == 'G' ? 3 : c == 'T' ? 4 : 0;
    uint64_t m = power ? 1 : 0;
    for (int i = 0; i < power; ++i) m *= base;
    return m;
  };
  if (num.size() >= 3 && upper(num.back()) == 'B' && (num[num.size() - 2] == 'i' || num[num.size() - 2] == 'I') &&
      scale(upper(num[num.size() - 3]), 1024)) {  // KiB, MiB, GiB, TiB
    unit = scale(upper(num[num.size() - 3]), 1024);
    num.remove_suffix(3);
  } else if (num.size() >= 2 && upper(num.back()) == 'B' && scale(upper(num[num.size() - 2]), 1000)) {
    unit = scale(upper(num[num.size() - 2]), 1000);  // KB, MB, GB, TB
    num.remove_suffix(2);
  } else if (!num.empty() && scale(upper(num.back()), 1024)) {
    unit = scale(upper(num.back()), 1024);  // K, M, G, T
    num.remove_suffix(1);
  } else if (num.size() >= 2 && upper(num.back()) == 'B') {
    num.remove_suffix(1);  // "4096B"
  }
  uint64_t v = 0;
  if (!parse_u64(num, &v) || (v != 0 && v > UINT64_MAX / unit))
    return make_error(Errc::kInvalidArgument,
                      "size '" + std::string(text) +
                          "' is not a size (examples: 4096, 64K, 16M, 1G = 1024-based, also "
                          "64KiB; 10MB = 10000000, 1000-based)");
  return v * unit;
}

// "1.5" with `unit` ns per 1 -> ns; false on bad syntax or a value above `limit`.
static bool parse_decimal(std::string_view s, unsigned __int128 unit, unsigned __int128 limit,
                          uint64_t* out) {
  const size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot), frac;
  if (dot != std::string_view::npos) {
    frac = s.substr(dot + 1);
    if (frac.empty() || frac.size() > 18) return false;
    for (char c : frac)
      if (c < '0' || c > '9') return false;
  }
  uint64_t w = 0;
  if (!parse_u64(whole, &w)) return false;
  unsigned __int128 v = static_cast<unsigned __int128>(w) * unit;
  if (!frac.empty()) {
    uint64_t f = 0, scale = 1;
    for (char c : frac) {
      f = f * 10 + static_cast<uint64_t>(c - '0');
      scale *= 10;
    }
    v += static_cast<unsigned __int128>(f) * unit / scale;  // sub-nanosecond parts dropped
  }
  if (v > limit) return false;
  *out = static_cast<uint64_t>(v);
  return true;
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
  if (!parse_decimal(num, mult, static_cast<uint64_t>(INT64_MAX) / 2, &v))
    return make_error(Errc::kInvalidArgument,
                      "duration '" + std::string(text) +
                          "' is not a duration (examples: 500ms, 1.5 = 1.5s, 0.2s, 2s, 1m, 1h)");
  return std::chrono::nanoseconds(static_cast<int64_t>(v));
}

uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

static bool parse_2(std::string_view s, size_t at, uint64_t* out) {
  return s.size() >= at + 2 && std::isdigit(static_cast<unsigned char>(s[at])) &&
         std::isdigit(static_cast<unsigned char>(s[at + 1])) && parse_u64(s.substr(at, 2), out);
}

// ISO 8601 -> ns since the epoch: "2026-11-25" (midnight UTC), "2026-11-25T13:00",
// "2026-11-25T13:00:00[.fffffffff]", then "Z", "+01:00", "-0500", "+01" or nothing (UTC).
static bool parse_iso8601(std::string_view s, uint64_t* out) {
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') return false;
  uint64_t y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
  if (!parse_u64(s.substr(0, 4), &y) || !parse_2(s, 5, &mo) || !parse_2(s, 8, &d)) return false;
  std::string_view rest = s.substr(10);
  int64_t offset_s = 0;
  if (!rest.empty()) {
    if (rest[0] != 'T' && rest[0] != 't' && rest[0] != ' ') return false;
    if (!parse_2(rest, 1, &h) || rest.size() < 6 || rest[3] != ':' || !parse_2(rest, 4, &mi))
      return false;
    rest.remove_prefix(6);
    if (!rest.empty() && rest[0] == ':') {
      if (!parse_2(rest, 1, &se)) return false;
      rest.remove_prefix(3);
      if (!rest.empty() && rest[0] == '.') {
        size_t n = 1;
        while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n]))) ++n;
        if (n == 1 || n > 10) return false;
        std::string digits(rest.substr(1, n - 1));
        digits.resize(9, '0');
        if (!parse_u64(digits, &frac)) return false;
        rest.remove_prefix(n);
      }
    }
    if (rest == "Z" || rest == "z") {
      rest = {};
    } else if (!rest.empty()) {  // +HH[:MM], -HHMM
      if (rest[0] != '+' && rest[0] != '-') return false;
      const int64_t sign = rest[0] == '-' ? -1 : 1;
      uint64_t oh = 0, om = 0;
      if (!parse_2(rest, 1, &oh)) return false;
      std::string_view m = rest.substr(3);
      if (!m.empty() && m[0] == ':') m.remove_prefix(1);
      if (!m.empty() && (m.size() != 2 || !parse_2(m, 0, &om))) return false;
      if (oh > 23 || om > 59) return false;
      offset_s = sign * static_cast<int64_t>(oh * 3600 + om * 60);
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1970) return false;
  // A day the month has (timegm() moved 2026-02-30 to March 2nd without a word: a review).
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d > kDays[mo - 1] + (mo == 2 && leap ? 1u : 0u)) return false;
  std::tm tm{};
  tm.tm_year = static_cast<int>(y) - 1900;
  tm.tm_mon = static_cast<int>(mo) - 1;
  tm.tm_mday = static_cast<int>(d);
  tm.tm_hour = static_cast<int>(h);
  tm.tm_min = static_cast<int>(mi);
  tm.tm_sec = static_cast<int>(se);
  const int64_t t = static_cast<int64_t>(timegm(&tm)) - offset_s;  // local time minus its offset
  if (t < 0 || static_cast<uint64_t>(t) > UINT64_MAX / 1000000000ULL - 1) return false;
  *out = static_cast<uint64_t>(t) * 1000000000ULL + frac;
  return true;
}

// Whether `a` is the keyword `kw` (lower case) in any case: LATEST and @NOW mean what
// latest and @now do, as the CLI's other choices do.
static bool is_keyword(std::string_view a, std::string_view kw) {
  return a.size() == kw.size() && std::equal(a.begin(), a.end(), kw.begin(), [](char x, char k) {
           return (x >= 'A' && x <= 'Z' ? static_cast<char>(x - 'A' + 'a') : x) == k;
         });
}

// After '@': a time in ns since the epoch, or false.
static bool parse_time(std::string_view t, uint64_t* out, std::string* note) {
  if (is_keyword(t, "now")) {
    *out = now_ns();
    return true;
  }
  if (t.size() > 4 && is_keyword(t.substr(0, 4), "now-")) t.remove_prefix(3);
  if (t.size() > 1 && t[0] == '-') {  // relative: "-10s", "-1.5m"
    auto d = parse_duration(t.substr(1));
    if (!d) return false;
    const uint64_t now = now_ns(), back = static_cast<uint64_t>(d.value().count());
    *out = back < now ? now - back : 0;
    return true;
  }
  static constexpr struct { const char* suffix; uint64_t ns; } kEpochUnits[] = {
      {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000ULL}};
  for (const auto& u : kEpochUnits) {
    const std::string_view suf(u.suffix);
    if (t.size() > suf.size() && t.substr(t.size() - suf.size()) == suf &&
        std::isdigit(static_cast<unsigned char>(t[t.size() - suf.size() - 1])))
      return parse_decimal(t.substr(0, t.size() - suf.size()), u.ns, UINT64_MAX, out);
  }
  uint64_t v = 0;
  if (parse_u64(t, &v)) {
    // A bare epoch number: its unit from its size (the years 1973 to 5138 in each unit).
    static constexpr struct { uint64_t below; uint64_t ns; const char* name; const char* unit; } kBySize[] = {
        {100000000000ULL, 1000000000ULL, "seconds", "s"},
        {100000000000000ULL, 1000000ULL, "milliseconds", "ms"},
        {100000000000000000ULL, 1000ULL, "microseconds", "us"},
        {UINT64_MAX, 1, "nanoseconds", "ns"}};
    for (const auto& u : kBySize) {
      if (v < u.below || u.ns == 1) {
        if (v > UINT64_MAX / u.ns) return false;
        *out = v * u.ns;
        if (note)
          *note = "@" + std::string(t) + " read as " + u.name +
                  " since the epoch (from its size); add a unit to say which (here @" +
                  std::string(t) + u.unit + "): s, ms, us or ns";
        return true;
      }
    }
  }
  return parse_iso8601(t, out);
}

Result<StartFrom> parse_start(std::string_view text, std::string* note) {
  if (note) note->clear();
  if (is_keyword(text, "earliest")) return StartFrom::earliest();
  if (is_keyword(text, "latest")) return StartFrom::latest();
  uint64_t v = 0;
  if (!text.empty() && text[0] == '@') {
    if (parse_time(text.substr(1), &v, note)) return StartFrom::time_ns(v);
  } else if (parse_u64(text, &v)) {
    return StartFrom::seq(v);
  }
  return make_error(Errc::kInvalidArgument,
                    "start '" + std::string(text) +
                        "' is not earliest, latest, a sequence number or @TIME (examples: "
                        "@2026-11-25T13:00:00Z, @2026-11-25T14:00+01:00, @2026-11-25, @-10s, "
                        "@now, @1796015187s, @1796015187000ms)");
}

}  // namespace shmbus
