// json.cc: see include/shmbus/json.h.
#include "shmbus/json.h"

#include <cmath>
#include <cstdio>


namespace shmbus {

size_t utf8_sequence_length(std::string_view s) noexcept {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;          // overlong
    if (c == 0xED) hi = 0x9F;          // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;          // overlong
    if (c == 0xF4) hi = 0x8F;          // above U+10FFFF
  } else {
    return 0;                          // continuation byte, C0/C1, F5..FF
  }
  if (s.size() < len) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < len; ++i)
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  return len;
}

bool is_valid_utf8(std::string_view s) noexcept {
  while (!s.empty()) {
    const size_t n = utf8_sequence_length(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}



void json_escape(std::string_view s, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  walk_utf8(
      s,
      [&](unsigned char c) {
        switch (c) {
          case '"': *out += "\\\""; break;
          case '\\': *out += "\\\\"; break;
          case '\b': *out += "\\b"; break;
          case '\f': *out += "\\f"; break;
          case '\n': *out += "\\n"; break;
          case '\r': *out += "\\r"; break;
          case '\t': *out += "\\t"; break;
          default:
            if (c < 0x20 || c == 0x7f) {
              *out += "\\u00";
              *out += kDigits[c >> 4];
              *out += kDigits[c & 15];
            } else {
              *out += static_cast<char>(c);
            }
        }
      },
      [&](std::string_view seq) { out->append(seq); },
      // not UTF-8: the replacement character, one per bad byte
      [&](unsigned char) { *out += "\\ufffd"; });
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_ += '}';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_ += ']';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  before_value();
  out_ += '"';
  json_escape(k, &out_);
  out_ += "\":";
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  out_ += '"';
  json_escape(s, &out_);
  out_ += '"';
  return *this;
}

JsonWriter& JsonWriter::value(uint64_t v) {
  before_value();
  out_ += std::to_string(v);
  return *this;
}

JsonWriter& JsonWriter::value(int64_t v) {
  before_value();
  out_ += std::to_string(v);
  return *this;
}

JsonWriter& JsonWriter::value(double v) {
  if (!std::isfinite(v)) return null();
  before_value();
  char buf[64];
  // Three decimals read well for rates and seconds; huge values keep every digit.
  std::snprintf(buf, sizeof buf, std::fabs(v) < 1e15 ? "%.3f" : "%.17g", v);
  out_ += buf;
  return *this;
}

JsonWriter& JsonWriter::value(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

std::string JsonWriter::release() {
  std::string s = std::move(out_);
  out_.clear();
  first_.clear();
  after_key_ = false;
  return s;
}

}  // namespace shmbus
