// bench/spin.h: a bounded busy-wait for receivers that poll shared memory.
#pragma once

#include <cstdint>

#include "clock.h"

namespace bench {

// Spins on `ready()` for about 100 ms; false when it never became true.
template <class Ready>
bool spin_until(Ready ready) noexcept {
  uint64_t deadline = 0;
  for (uint32_t i = 1;; ++i) {
    if (ready()) return true;
    if ((i & 0xffff) == 0) {  // read the clock rarely: the hot loop stays a load
      const uint64_t now = mono_ns();
      if (deadline == 0) deadline = now + 100'000'000;
      else if (now > deadline) return false;
    }
  }
}

}  // namespace bench
