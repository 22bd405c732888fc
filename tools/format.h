// format.h: byte-level helpers for printing records and sizes: UTF-8 validation,
// base64 (RFC 4648, padded), lower-case hex, and human-readable sizes and times.
// Pure functions, no I/O; shared by the JSON writer and the commands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/json.h"  // is_valid_utf8, utf8_sequence_length

namespace shmbus::tools {

// Text from shared memory or disk made safe for a terminal: control characters (C0,
// DEL, C1: ESC sequences, bells, window-title changes), bytes that are not UTF-8 and
// backslashes become \xNN / \\; printable UTF-8 passes unchanged.
// escape_backslash false (one-line messages): a backslash is left as it is, so that a
// message quoting an escape the user typed (-D '\q') or a name already made terminal text
// shows it once, not doubled.
std::string terminal_text(std::string_view bytes, bool escape_backslash = true);

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

// The candidate closest to `word` by edit distance (insertions, deletions, substitutions,
// swaps of neighbours), if it is close enough to be a typo (at most 1 edit for words of
// up to 4 characters, else 2), or a candidate that starts with `word`; "" if none.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace shmbus::tools
