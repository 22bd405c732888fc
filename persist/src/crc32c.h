// crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by
// iSCSI, ext4 and LevelDB.  From 256 bytes on, ISA-L's crc32_iscsi (libisal); below,
// SSE4.2's crc32 instruction when the CPU has it (checked once at run time), else a
// slicing-by-8 table.
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
// ISA-L's crc32_iscsi (any CPU: it picks its own code at run time).
uint32_t crc32c_extend_isal(uint32_t crc, const void* data, size_t n) noexcept;

}  // namespace shmbus::persist::detail
