// crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by
// iSCSI, ext4 and LevelDB.  SSE4.2's crc32 instruction when the CPU has it
// (checked once at run time), else a slicing-by-8 table.  No dependency.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shmbus::persist::detail {

// Continues a CRC: crc32c_extend(crc32c(a), b) == crc32c(a || b).  Start from 0.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) noexcept;
inline uint32_t crc32c(const void* data, size_t n) noexcept { return crc32c_extend(0, data, n); }

// The two implementations, exposed so that tests can check one against the other.
uint32_t crc32c_extend_table(uint32_t crc, const void* data, size_t n) noexcept;
uint32_t crc32c_extend_sse42(uint32_t crc, const void* data, size_t n) noexcept;  // needs SSE4.2
bool crc32c_has_sse42() noexcept;
// Three crc32 chains side by side, joined with a carry-less multiply (needs SSE4.2 and
// PCLMULQDQ; the table otherwise).
uint32_t crc32c_extend_3way(uint32_t crc, const void* data, size_t n) noexcept;
bool crc32c_has_3way() noexcept;

}  // namespace shmbus::persist::detail
