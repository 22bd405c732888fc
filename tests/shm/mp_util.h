// mp_util.h: the payload of the multi-process and fault tests' producers; processes and
// pipes come from tests/common/process.h.
#pragma once

#include <cstdint>

#include "../common/process.h"

namespace shmbus::test {

// The payload every test producer writes: who, which, and a checksum of both.
struct Msg {
  uint32_t producer;
  uint32_t pad;
  uint64_t index;
  uint64_t check;
};
inline uint64_t msg_check(uint32_t producer, uint64_t index) {
  uint64_t x = (static_cast<uint64_t>(producer) << 48) ^ index ^ 0x9e3779b97f4a7c15ULL;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

}  // namespace shmbus::test
