// format.cc: see format.h.
#include "format.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace shmbus::tools {

std::string terminal_text(std::string_view bytes, bool escape_backslash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  auto escape = [&](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  walk_utf8(
      bytes,
      [&](unsigned char c) {
        if (c < 0x20 || c == 0x7f) escape(c);
        else if (c == '\\' && escape_backslash) out += "\\\\";
        else out += static_cast<char>(c);
      },
      [&](std::string_view seq) {
        // U+0080..U+009F (C1 controls, e.g. CSI) are encoded C2 80..C2 9F: escaped byte by byte.
        if (seq.size() == 2 && static_cast<unsigned char>(seq[0]) == 0xc2 &&
            static_cast<unsigned char>(seq[1]) < 0xa0) {
          for (const char ch : seq) escape(static_cast<unsigned char>(ch));
        } else {
          out.append(seq);
        }
      },
      escape);
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    const uint32_t v = (b(i) << 16) | (rest == 2 ? b(i + 1) << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string format_size(uint64_t bytes) {
  static constexpr struct { int shift; char suffix; } kUnits[] = {
      {40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}};
  for (const auto& u : kUnits) {
    const uint64_t unit = 1ULL << u.shift;
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + u.suffix;
  }
  return std::to_string(bytes);
}

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[u]);
  return buf;
}

std::string format_time_ns(uint64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000ULL);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(ns % 1000000000ULL / 1000000ULL));
  return buf;
}

std::string format_rate(double per_second) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", per_second);
  return buf;
}

static size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment distance, three rows.
  std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    prev2.swap(prev);
    prev.swap(cur);
  }
  return prev[b.size()];
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.empty() || word.size() > 200) return "";
  std::string best;
  size_t best_d = word.size() <= 4 ? 1 : 2;
  bool found = false;
  for (const auto& c : candidates) {
    if (c.size() > 200) continue;
    const size_t d = edit_distance(word, c);
    if (d <= best_d && (!found || d < best_d)) {
      best = c;
      best_d = d;
      found = true;
    }
  }
  if (found) return best;
  for (const auto& c : candidates)
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0) return c;
  return "";
}

}  // namespace shmbus::tools
