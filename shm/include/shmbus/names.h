// shmbus/names.h: names, namespaces and the parsing of sizes and durations that every
// command and binding shares; the wall clock and the process-wide stop check.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "shmbus/result.h"

namespace shmbus {

// Names match [A-Za-z0-9._-]{1,100} and are neither "." nor "..".
Result<void> validate_name(std::string_view what, std::string_view name);

// The namespace to use: `flag` if non-empty, else $SHMBUS_NAMESPACE, else "default".
std::string resolve_namespace(std::string_view flag = {});

// "shmbus.NS.STREAM": the POSIX shared-memory object name (without the leading '/').
std::string object_name(std::string_view ns, std::string_view stream);

// Parses "4096", "64K", "16M", "1G", "64KiB" (powers of 1024: K M G T, any case, and
// KiB MiB GiB TiB) and "10MB", "1GB" (powers of 1000: KB MB GB TB). Error on anything else.
Result<uint64_t> parse_size(std::string_view text);

// Parses "500ms", "2s", "1m", "1h", "250us", "10ns", decimals ("1.5", "0.2s", "1.5m"; below
// a nanosecond dropped); a bare number is seconds.
Result<std::chrono::nanoseconds> parse_duration(std::string_view text);

// Wall-clock nanoseconds since the epoch (CLOCK_REALTIME through the vDSO).
uint64_t now_ns() noexcept;

// A process-wide "stop requested" check (e.g. set by a SIGINT/SIGTERM handler) that the
// library's bounded set-up waits (the registry lock) and a publish waiting for room in a
// full stream (FullPolicy::kWait: it then returns kFull before its full_timeout) poll
// between their sleeps, so that a stop signal ends them at once.  Thread: call once at
// start-up.  nullptr: none (the default).
using StopCheck = bool (*)() noexcept;
void set_stop_check(StopCheck check) noexcept;

}  // namespace shmbus
