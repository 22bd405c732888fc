// clock.cc: calibrating the TSC against CLOCK_REALTIME (see clock.h): the clock the
// timestamps stand for, NTP slewing included (a raw-rate calibration drifts from it by
// up to 500 ppm).
#include "clock.h"

#include <cpuid.h>
#include <time.h>

#include <atomic>

namespace shmbus::detail {


TscSample tsc_sample(int tries) noexcept {
  TscSample best{0, 0};
  uint64_t best_width = ~0ULL;
  for (int i = 0; i < tries; ++i) {
    const uint64_t k0 = __rdtsc();
    const uint64_t ns = now_ns();
    const uint64_t k1 = __rdtsc();
    if (k1 - k0 < best_width) {
      best_width = k1 - k0;
      best = TscSample{ns, k0 + (k1 - k0) / 2, k1 - k0};
    }
  }
  return best;
}

std::mutex& fork_mutex() noexcept {
  static std::mutex mu;
  return mu;
}

const TscCalibration& tsc_calibration() {
  // acquire: pairs with the release below; once set, the calibration is complete.
  static std::atomic<const TscCalibration*> ready{nullptr};
  if (const TscCalibration* c = ready.load(std::memory_order_acquire)) return *c;
  // Never across a fork(): the prepare handler takes this mutex, so no child is forked
  // while the static below is half-initialised (its guard would stay taken in the child).
  std::lock_guard<std::mutex> no_fork(fork_mutex());
  static const TscCalibration cal = [] {
    TscCalibration c;
    unsigned a = 0, b = 0, cx = 0, d = 0;
    // CPUID 0x80000007 EDX bit 8: invariant TSC (constant rate, runs in all C-states).
    if (!__get_cpuid(0x80000007, &a, &b, &cx, &d) || !(d & (1u << 8))) return c;
    // Two samples 5 ms apart; each the best of 16, so a preemption between a clock read
    // and its TSC read (which would skew the rate by up to 1e-3) is left out.
    const TscSample s0 = tsc_sample(16);
    while (now_ns() - s0.ns < 5'000'000) {
    }
    const TscSample s1 = tsc_sample(16);
    if (s1.tsc <= s0.tsc || s1.ns <= s0.ns) return c;
    const double ns_per_tick = static_cast<double>(s1.ns - s0.ns) / static_cast<double>(s1.tsc - s0.tsc);
    c.ns_per_tick_q32 = static_cast<uint64_t>(ns_per_tick * 4294967296.0);
    c.reanchor_ticks = static_cast<uint64_t>(1'000'000 / ns_per_tick);
    c.usable = c.ns_per_tick_q32 > 0 && c.reanchor_ticks > 0;
    return c;
  }();
  ready.store(&cal, std::memory_order_release);
  return cal;
}

}  // namespace shmbus::detail
