// shmbus/detail/steady_clock.h: the monotonic clock every bounded wait of shm/ and
// persist/ measures its deadline with.  Internal: not for users (not shipped).
#pragma once

#include <time.h>

#include <cstdint>

namespace shmbus::detail {

// Nanoseconds of CLOCK_MONOTONIC (through the vDSO: no system call).  Only differences
// mean anything.
inline uint64_t steady_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace shmbus::detail
