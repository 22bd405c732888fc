// format.h: byte-level helpers for printing records and sizes: UTF-8 validation,
// base64 (RFC 4648, padded), lower-case hex, and human-readable sizes and times.
// Pure functions, no I/O; shared by the JSON writer and the commands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shmbus::tools {

// Length of the well-formed UTF-8 sequence starting at s[0] (1..4), or 0 if the bytes
// there are not one (stray continuation byte, overlong form, surrogate, > U+10FFFF,
// truncated sequence).  s must not be empty.
size_t utf8_sequence_length(std::string_view s) noexcept;

// True when the whole of `s` is well-formed UTF-8 (NUL bytes included: they are valid).
bool is_valid_utf8(std::string_view s) noexcept;

std::string base64_encode(std::string_view bytes);
std::string hex_encode(std::string_view bytes);

// 65536 -> "64K", 16777216 -> "16M", 1000 -> "1000": the inverse of parse_size() for
// exact multiples, the plain byte count otherwise.
std::string format_size(uint64_t bytes);
// A measured amount of bytes for people: "13.0 MiB".
std::string format_bytes(double bytes);

// Nanoseconds since the epoch -> "2026-11-25T13:00:00.123Z" (UTC, milliseconds).
std::string format_time_ns(uint64_t ns);

// A rate with three significant decimals: 1234.5678 -> "1234.568".
std::string format_rate(double per_second);

}  // namespace shmbus::tools
