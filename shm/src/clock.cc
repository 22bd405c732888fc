// clock.cc: calibrating the TSC against CLOCK_MONOTONIC_RAW (see clock.h).
#include "clock.h"

#include <cpuid.h>
#include <time.h>

namespace shmbus::detail {

static uint64_t raw_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

const TscCalibration& tsc_calibration() {
  static const TscCalibration cal = [] {
    TscCalibration c;
    unsigned a = 0, b = 0, cx = 0, d = 0;
    // CPUID 0x80000007 EDX bit 8: invariant TSC (constant rate, runs in all C-states).
    if (!__get_cpuid(0x80000007, &a, &b, &cx, &d) || !(d & (1u << 8))) return c;
    const uint64_t t0 = raw_ns(), k0 = __rdtsc();
    uint64_t t1, k1;
    do {
      t1 = raw_ns();
      k1 = __rdtsc();
    } while (t1 - t0 < 2'000'000);
    if (k1 <= k0) return c;
    const double ns_per_tick = static_cast<double>(t1 - t0) / static_cast<double>(k1 - k0);
    c.ns_per_tick_q32 = static_cast<uint64_t>(ns_per_tick * 4294967296.0);
    c.reanchor_ticks = static_cast<uint64_t>(5'000'000 / ns_per_tick);
    c.usable = c.ns_per_tick_q32 > 0 && c.reanchor_ticks > 0;
    return c;
  }();
  return cal;
}

}  // namespace shmbus::detail
