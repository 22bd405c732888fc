// crc_bench.cc: the CRC-32C that checks every stored frame, one implementation against
// the others at 64 B, 1 KiB and 64 KiB (Google Benchmark; bytes/s).  The buffer starts
// 8-byte aligned plus 4, as a frame's payload can.
//   table   slicing-by-8 (the fallback)
//   serial  one chain of SSE4.2 crc32 (the store's CRC up to now)
//   3way    three chains joined with PCLMULQDQ (crc32c_extend_3way)
//   isal    ISA-L's crc32_iscsi (crc32c_extend_isal)
//   store   crc32c_extend, what the store uses (ISA-L from 256 bytes, serial below)
// x86-64 only (SSE4.2 and PCLMULQDQ).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <nmmintrin.h>
#include <wmmintrin.h>

#include "crc32c.h"

namespace {
using namespace shmbus::persist::detail;

// ---- 3-way interleaved (measured here against ISA-L, which won: the store uses ISA-L) --
constexpr uint32_t kPoly = 0x82F63B78u;  // CRC-32C, reflected

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

__attribute__((target("sse4.2,pclmul"))) inline uint64_t shift_state(uint32_t s, uint32_t k) {
  const __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(s)),
                                            _mm_cvtsi32_si128(static_cast<int>(k)), 0x00);
  return _mm_crc32_u64(0, static_cast<uint64_t>(_mm_cvtsi128_si64(prod)));
}

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



const uint8_t* data(size_t n) {
  static std::vector<uint8_t> buf = [] {
    std::vector<uint8_t> b((64 << 10) + 64);
    std::mt19937_64 rng(1);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
  }();
  (void)n;
  return buf.data() + 4;
}

template <uint32_t (*F)(uint32_t, const void*, size_t)>
void run(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  const uint8_t* p = data(n);
  uint32_t c = 0;
  for (auto _ : st) {
    c = F(c, p, n);
    benchmark::DoNotOptimize(c);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(n));
}


#define SIZES ->Arg(36)->Arg(64)->Arg(128)->Arg(256)->Arg(1024)->Arg(64 << 10)
BENCHMARK(run<crc32c_extend_table>)->Name("crc32c/table") SIZES;
BENCHMARK(run<crc32c_extend_sse42>)->Name("crc32c/serial") SIZES;
BENCHMARK(run<crc32c_extend_3way>)->Name("crc32c/3way") SIZES;
BENCHMARK(run<crc32c_extend_isal>)->Name("crc32c/isal") SIZES;
BENCHMARK(run<crc32c_extend>)->Name("crc32c/store") SIZES;

// Every variant must give the table's CRC, bit for bit, before its speed means anything.
bool all_agree() {
  std::mt19937_64 rng(3);
  const uint8_t* p = data(0);
  for (size_t n = 0; n <= 4096; ++n) {
    const size_t off = rng() % 60;
    const auto seed = static_cast<uint32_t>(rng());
    const uint32_t want = crc32c_extend_table(seed, p + off, n);
    bool ok = crc32c_extend_sse42(seed, p + off, n) == want &&
              crc32c_extend_3way(seed, p + off, n) == want &&
              crc32c_extend(seed, p + off, n) == want;
    ok = ok && crc32c_extend_isal(seed, p + off, n) == want;
    if (!ok) {
      std::fprintf(stderr, "shmbus-crc-bench: CRC variants disagree at length %zu\n", n);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (!all_agree()) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
