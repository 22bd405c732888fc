// coding.h: little-endian fixed-width integers, written and read byte by byte.
//
// Everything persist/ puts on disk goes through these: no native struct is ever
// written, so the format does not depend on the compiler, the padding or the host.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmbus::persist::detail {

inline void put_u16(std::byte* p, uint16_t v) noexcept {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void put_u32(std::byte* p, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void put_u64(std::byte* p, uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline uint16_t get_u16(const std::byte* p) noexcept {
  return static_cast<uint16_t>(static_cast<uint16_t>(p[0]) | static_cast<uint16_t>(p[1]) << 8);
}
inline uint32_t get_u32(const std::byte* p) noexcept {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint32_t>(p[i]);
  return v;
}
inline uint64_t get_u64(const std::byte* p) noexcept {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

inline bool all_zero(const std::byte* p, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}

constexpr uint64_t align8(uint64_t n) noexcept { return (n + 7) & ~uint64_t{7}; }

}  // namespace shmbus::persist::detail
