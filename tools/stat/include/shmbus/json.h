// shmbus/json.h (tools/stat, library shmbus::stat): a small streaming JSON writer
// (RFC 8259), enough for `stat --json` (stat.h) and the commands' --json output.  Commas and nesting are tracked for the caller; strings are escaped, and
// bytes that are not UTF-8 become U+FFFD so that the output is always valid JSON.
// Binary payloads are not strings: encode them (base64) before writing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmbus {

// Length of the well-formed UTF-8 sequence at s[0] (1..4), or 0 if there is none (stray
// continuation byte, overlong form, surrogate, above U+10FFFF, truncated).
size_t utf8_sequence_length(std::string_view s) noexcept;
bool is_valid_utf8(std::string_view s) noexcept;

// The one UTF-8 walk behind every escaper (JSON, Prometheus labels, the terminal's):
// each ASCII byte goes to ascii(c), each well-formed multi-byte sequence to seq(bytes),
// and each byte that starts none to bad(c), which then counts as one byte.
template <class Ascii, class Seq, class Bad>
void walk_utf8(std::string_view s, Ascii&& ascii, Seq&& seq, Bad&& bad) {
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s[0]);
    size_t n = 1;
    if (c < 0x80) {
      ascii(c);
    } else if ((n = utf8_sequence_length(s)) != 0) {
      seq(s.substr(0, n));
    } else {
      n = 1;
      bad(c);
    }
    s.remove_prefix(n);
  }
}


// Appends `s` to *out as the inside of a JSON string (no surrounding quotes).
void json_escape(std::string_view s, std::string* out);

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  // Inside an object: the next value's key.
  JsonWriter& key(std::string_view k);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(uint64_t v);
  JsonWriter& value(uint32_t v) { return value(static_cast<uint64_t>(v)); }
  JsonWriter& value(int64_t v);
  JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(double v);  // non-finite -> null
  JsonWriter& value(bool v);
  JsonWriter& null();

  // key(k).value(v) in one call.
  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

  const std::string& str() const { return out_; }
  // Takes the text out and starts over.
  std::string release();

 private:
  void before_value();

  std::string out_;
  // One entry per open container: true while it has no element yet.
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace shmbus
