// bench/clock.h: the clocks every measurement in shmbus-bench uses.
//
// Round trips are timed with the TSC (x86: lfence; rdtsc, ~10 ns, invariant TSC checked by
// the caller), converted with a rate calibrated against CLOCK_MONOTONIC at start-up.  Elsewhere
// (throughput spans, fixed-rate streaming stamps) both processes read CLOCK_MONOTONIC, which
// is the same clock on every core.
#pragma once

#include <cstdint>

namespace bench {

// Calibrates ticks_to_ns(); call once in the parent before any fork. Thread: main only.
void calibrate_ticks();
// Cycle-counter ticks (CLOCK_MONOTONIC ns where there is no usable counter).
uint64_t ticks() noexcept;
double ticks_to_ns(uint64_t ticks) noexcept;
double ticks_per_ns() noexcept;
// True when ticks() reads the TSC, false when it falls back to clock_gettime.
bool ticks_are_tsc() noexcept;

uint64_t mono_ns() noexcept;       // CLOCK_MONOTONIC
uint64_t realtime_ns() noexcept;   // CLOCK_REALTIME

}  // namespace bench
