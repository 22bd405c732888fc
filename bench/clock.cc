#include "clock.h"

#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_HAVE_TSC 1
#else
#define BENCH_HAVE_TSC 0
#endif

namespace bench {
namespace {
// Written once by calibrate_ticks() before any fork; read-only afterwards.
double g_ticks_per_ns = 1.0;

uint64_t clock_ns(clockid_t id) noexcept {
  timespec ts;
  clock_gettime(id, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}
}  // namespace

uint64_t mono_ns() noexcept { return clock_ns(CLOCK_MONOTONIC); }
uint64_t realtime_ns() noexcept { return clock_ns(CLOCK_REALTIME); }

uint64_t ticks() noexcept {
#if BENCH_HAVE_TSC
  _mm_lfence();  // keep rdtsc from running ahead of the loads that ended the wait
  return __rdtsc();
#else
  return mono_ns();
#endif
}

bool ticks_are_tsc() noexcept { return BENCH_HAVE_TSC != 0; }

void calibrate_ticks() {
#if BENCH_HAVE_TSC
  const uint64_t t0 = mono_ns();
  const uint64_t c0 = ticks();
  while (mono_ns() - t0 < 50'000'000) {
  }
  const uint64_t t1 = mono_ns();
  const uint64_t c1 = ticks();
  g_ticks_per_ns = double(c1 - c0) / double(t1 - t0);
#endif
}

double ticks_per_ns() noexcept { return g_ticks_per_ns; }
double ticks_to_ns(uint64_t t) noexcept { return double(t) / g_ticks_per_ns; }

}  // namespace bench
