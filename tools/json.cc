// json.cc: see json.h.
#include "json.h"

#include <cmath>
#include <cstdio>

#include "format.h"

namespace shmbus::tools {

void json_escape(std::string_view s, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s[0]);
    if (c >= 0x80) {
      const size_t n = utf8_sequence_length(s);
      if (n == 0) {
        *out += "\\ufffd";  // not UTF-8: the replacement character, one per bad byte
        s.remove_prefix(1);
      } else {
        out->append(s.substr(0, n));
        s.remove_prefix(n);
      }
      continue;
    }
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
    s.remove_prefix(1);
  }
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

}  // namespace shmbus::tools
