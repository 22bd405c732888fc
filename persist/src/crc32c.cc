// crc32c.cc: table-driven, serial SSE4.2 and 3-way interleaved SSE4.2 CRC-32C.
#include "crc32c.h"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#include <wmmintrin.h>
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
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(c, *p++);
    --n;
  }
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (n-- > 0) c = _mm_crc32_u8(c, *p++);
  return ~c;
}

bool crc32c_has_sse42() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#else
uint32_t crc32c_extend_sse42(uint32_t crc, const void* data, size_t n) noexcept {
  return crc32c_extend_table(crc, data, n);
}
bool crc32c_has_sse42() noexcept { return false; }
#endif

// ---- 3-way interleaved ----------------------------------------------------------------
// The crc32 instruction has a latency of 3 cycles and a throughput of 1 per cycle, so one
// serial chain uses a third of it.  A block of 3*L bytes is cut in three lanes A, B, C of
// L bytes each, run as three independent chains (A from the incoming state, B and C from
// 0), and joined.  Without the pre/post inversion the state is linear in GF(2)[x] mod P:
//   state(s, A||B||C) = s_A * x^(16L) + s_B * x^(8L) + s_C   (mod P)
// where s_A, s_B, s_C are the lane states.  Multiplying a state by x^(8L) mod P:
// in the reflected representation (bit i of a 32-bit value is the coefficient of
// x^(31-i)) a carry-less product of two 32-bit values a, b, read as 64 bits (bit k is
// the coefficient of x^(63-k)), is a(x)*b(x)*x; and crc32_u64(0, w) = w(x)*x^32 mod P.
// So crc32_u64(0, clmul(s, K)) = s*K*x^33 mod P, which is s*x^(8L) with K = x^(8L-33).
namespace {

// x^m mod P, reflected: 1 is bit 31; multiplying by x is a right shift that folds the
// bit falling off (the coefficient of x^32) back in as P.
constexpr uint32_t xpow_mod(uint64_t m) {
  uint32_t v = 0x80000000u;
  for (uint64_t i = 0; i < m; ++i) v = (v >> 1) ^ (kPoly & (0u - (v & 1u)));
  return v;
}

// Lane lengths, largest first: a lane is long enough that the join (a multiply and a
// crc32 per lane) costs little next to it, and the shorter ones keep records of a few
// hundred bytes on the interleaved path.
struct Lane {
  size_t len;      // bytes per lane, a multiple of 8
  uint32_t k1, k2;  // x^(8L-33), x^(16L-33): shift by one lane, by two
};
constexpr Lane kLanes[] = {
    {4096, xpow_mod(8 * 4096 - 33), xpow_mod(16 * 4096 - 33)},
    {512, xpow_mod(8 * 512 - 33), xpow_mod(16 * 512 - 33)},
    {128, xpow_mod(8 * 128 - 33), xpow_mod(16 * 128 - 33)},
    {32, xpow_mod(8 * 32 - 33), xpow_mod(16 * 32 - 33)},
};

}  // namespace

#ifdef SHMBUS_CRC_X86
namespace {
__attribute__((target("sse4.2,pclmul"))) inline uint64_t shift_state(uint32_t s, uint32_t k) {
  const __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(s)),
                                            _mm_cvtsi32_si128(static_cast<int>(k)), 0x00);
  return _mm_crc32_u64(0, static_cast<uint64_t>(_mm_cvtsi128_si64(prod)));
}
}  // namespace

__attribute__((target("sse4.2,pclmul"))) uint32_t crc32c_extend_3way(uint32_t crc,
                                                                      const void* data,
                                                                      size_t n) noexcept {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(c, *p++);
    --n;
  }
  uint64_t a = c;
  for (const Lane& lane : kLanes) {
    const size_t L = lane.len;
    while (n >= 3 * L) {
      uint64_t b = 0, d = 0;
      for (size_t i = 0; i < L; i += 8) {
        uint64_t wa, wb, wd;
        std::memcpy(&wa, p + i, 8);
        std::memcpy(&wb, p + L + i, 8);
        std::memcpy(&wd, p + 2 * L + i, 8);
        a = _mm_crc32_u64(a, wa);
        b = _mm_crc32_u64(b, wb);
        d = _mm_crc32_u64(d, wd);
      }
      a = shift_state(static_cast<uint32_t>(a), lane.k2) ^
          shift_state(static_cast<uint32_t>(b), lane.k1) ^ d;
      p += 3 * L;
      n -= 3 * L;
    }
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    a = _mm_crc32_u64(a, w);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(a);
  while (n-- > 0) c = _mm_crc32_u8(c, *p++);
  return ~c;
}

bool crc32c_has_3way() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
  return has;
}
#else
uint32_t crc32c_extend_3way(uint32_t crc, const void* data, size_t n) noexcept {
  return crc32c_extend_table(crc, data, n);
}
bool crc32c_has_3way() noexcept { return false; }
#endif

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) noexcept {
  return crc32c_has_sse42() ? crc32c_extend_sse42(crc, data, n)
                            : crc32c_extend_table(crc, data, n);
}

}  // namespace shmbus::persist::detail
