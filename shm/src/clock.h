// clock.h: record timestamps without a system call per record.
//
// clock_gettime(CLOCK_REALTIME) costs ~21 ns here (half of a publish); rdtsc ~10 ns.
// A FastClock extrapolates the wall clock from the TSC, calibrated once per process
// (5 ms, at the first Producer::open) and re-anchored to clock_gettime every 1 ms, so
// its error stays within tens of ns; it never goes backwards within one producer.
// Without an invariant TSC it is clock_gettime.
#pragma once

#include <x86intrin.h>

#include <cstdint>
#include <mutex>

#include "shmbus/shmbus.h"

namespace shmbus::detail {

struct TscCalibration {
  bool usable = false;
  uint64_t ns_per_tick_q32 = 0;   // nanoseconds per tick, 32.32 fixed point
  uint64_t reanchor_ticks = 0;    // 1 ms of ticks
};
const TscCalibration& tsc_calibration();

// The process's fork() exclusion: held by pthread_atfork's prepare handler across every
// fork() (mapping.cc registers it at load), and by one-time initialisations that must
// not be copied half-done into a child (the TSC calibration: a child forked while
// another thread calibrated waited for ever on the static's guard).
std::mutex& fork_mutex() noexcept;

// A (wall clock, TSC) pair: the TSC at the middle of the clock_gettime call, best (the
// narrowest bracket) of `tries`, so that a preemption inside one try does not count.
struct TscSample {
  uint64_t ns;
  uint64_t tsc;
  uint64_t width = 0;  // ticks between the two TSC reads around clock_gettime
};
TscSample tsc_sample(int tries) noexcept;

class FastClock {
 public:
  FastClock() : cal_(&tsc_calibration()) {}
  uint64_t now() noexcept {
    if (!cal_->usable) return now_ns();
    uint64_t d = ordered_tsc() - base_tsc_;
    if (d > cal_->reanchor_ticks) {
      anchor();
      d = ordered_tsc() - base_tsc_;
    }
    uint64_t t = base_ns_ + static_cast<uint64_t>((static_cast<unsigned __int128>(d) * cal_->ns_per_tick_q32) >> 32);
    if (t < last_) t = last_;
    last_ = t;
    return t;
  }

 private:
  // Called after the claim's locked compare-and-swap, which rdtsc does not pass.
  static uint64_t ordered_tsc() noexcept { return __rdtsc(); }
  void anchor() noexcept {
    TscSample s = tsc_sample(2);
    // Both tries preempted inside clock_gettime (a loaded VM): the pair is off by up to
    // half its bracket (0.5 ms in a loaded CI run, FastClock.TracksWallClockAndIsMonotonic).
    // The old anchor still extrapolates to within tens of ns: keep it (moved on by a
    // tenth of the period, the same line) and try again then.  Accepted at 1 us of ticks
    // or less (a bracket takes ~50 ns here), or after 8 refusals in a row (a clock that
    // is always that slow to read).
    if (base_tsc_ != 0 && s.width > cal_->reanchor_ticks / 1000 && refused_ < 8) {
      ++refused_;
      const uint64_t step = cal_->reanchor_ticks / 10;
      base_tsc_ += step;
      base_ns_ += static_cast<uint64_t>((static_cast<unsigned __int128>(step) * cal_->ns_per_tick_q32) >> 32);
      return;
    }
    refused_ = 0;
    base_ns_ = s.ns;
    base_tsc_ = s.tsc;
  }
  const TscCalibration* cal_;
  uint64_t base_tsc_ = 0;   // 0: the first now() anchors (d is huge)
  uint64_t base_ns_ = 0;
  uint64_t last_ = 0;
  uint32_t refused_ = 0;    // anchors refused in a row (a preempted sample)
};

}  // namespace shmbus::detail
