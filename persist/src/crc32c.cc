// crc32c.cc: CRC-32C: ISA-L's crc32_iscsi, one chain of SSE4.2 crc32, a table.
#include "crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <nmmintrin.h>
#define SHMBUS_CRC_X86 1
#endif

namespace shmbus::persist::detail {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the slicing-by-8 loop loads words in little-endian order");

constexpr uint32_t kPoly = 0x82F63B78u;  // CRC-32C, reflected

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (kPoly & (0u - (c & 1u)));
    t[0][i] = c;
  }
  for (int s = 1; s < 8; ++s)
    for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  return t;
}

constexpr Tables kTables = make_tables();

}  // namespace

uint32_t crc32c_extend_table(uint32_t crc, const void* data, size_t n) noexcept {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = kTables[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    --n;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= c;
    c = kTables[7][w & 0xFF] ^ kTables[6][(w >> 8) & 0xFF] ^ kTables[5][(w >> 16) & 0xFF] ^
        kTables[4][(w >> 24) & 0xFF] ^ kTables[3][(w >> 32) & 0xFF] ^
        kTables[2][(w >> 40) & 0xFF] ^ kTables[1][(w >> 48) & 0xFF] ^ kTables[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = kTables[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

#ifdef SHMBUS_CRC_X86
__attribute__((target("sse4.2"))) uint32_t crc32c_extend_sse42(uint32_t crc, const void* data,
                                                                size_t n) noexcept {
  // Unaligned 8-byte steps from the start (as fast as aligned ones on x86-64, where a
  // byte-wise run up to alignment cost up to 7 dependent steps), then 4, 2, 1: a frame
  // header's 28 bytes take 4 steps instead of 7.
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c64 = ~crc;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
    p += 8;
    n -= 8;
  }
  auto c = static_cast<uint32_t>(c64);
  if (n & 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    c = _mm_crc32_u32(c, w);
    p += 4;
  }
  if (n & 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    c = _mm_crc32_u16(c, w);
    p += 2;
  }
  if (n & 1) c = _mm_crc32_u8(c, *p);
  return ~c;
}

namespace {
// Read once at load time: no guard check and no call per CRC (a 64-byte record's frame
// takes two).  A CRC computed by another file's static initializer before this one ran
// takes the table: the same value.
const bool g_sse42 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}();
}  // namespace

bool crc32c_has_sse42() noexcept { return g_sse42; }
#else
uint32_t crc32c_extend_sse42(uint32_t crc, const void* data, size_t n) noexcept {
  return crc32c_extend_table(crc, data, n);
}
bool crc32c_has_sse42() noexcept { return false; }
#endif

#ifdef SHMBUS_CRC_X86
namespace {
// ISA-L 2.30's AVX-512 crc32_iscsi (crc32_iscsi_by16_10) returns without vzeroupper: the
// upper halves of the vector registers stay dirty, and every legacy-SSE instruction after
// it (the compiler's movq to an xmm register, say) then pays a transition.  Measured:
// 1 KiB replay spent 19% of its time on one such movq in SegmentReader::next.
__attribute__((target("avx"))) void zero_upper() noexcept { _mm256_zeroupper(); }
bool has_avx() noexcept {
  static const bool has = __builtin_cpu_supports("avx");
  return has;
}
}  // namespace
#endif

uint32_t crc32c_extend_isal(uint32_t crc, const void* data, size_t n) noexcept {
  // crc32_iscsi keeps no pre/post inversion of its own and takes an int length.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t c = ~crc;
  while (n > 0) {
    const size_t k = std::min<size_t>(n, size_t{1} << 30);
    c = crc32_iscsi(p, static_cast<int>(k), c);
    p += k;
    n -= k;
  }
#ifdef SHMBUS_CRC_X86
  if (has_avx()) zero_upper();
#endif
  return ~c;
}

// ISA-L folds 64 or more bytes per step with carry-less multiplies (3.5x one crc32 chain
// at 1 KiB, 6x at 64 KiB here: bench/crc_bench.cc), but below a few hundred bytes its
// set-up costs more than it saves: up to 255 bytes (a frame header, a small record) the
// crc32 instruction runs one chain itself.
constexpr size_t kIsalFrom = 256;

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) noexcept {
  if (n >= kIsalFrom) return crc32c_extend_isal(crc, data, n);
#ifdef SHMBUS_CRC_X86
  if (g_sse42) return crc32c_extend_sse42(crc, data, n);
#endif
  return crc32c_extend_table(crc, data, n);
}

}  // namespace shmbus::persist::detail
