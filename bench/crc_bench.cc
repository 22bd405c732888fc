// crc_bench.cc: the CRC-32C that checks every stored frame, one implementation against
// the others at 64 B, 1 KiB and 64 KiB (Google Benchmark; bytes/s).  The buffer starts
// 8-byte aligned plus 4, as a frame's payload can.
//   table   slicing-by-8 (the fallback)
//   serial  one chain of SSE4.2 crc32 (the store's CRC up to now)
//   3way    three chains joined with PCLMULQDQ (crc32c_extend_3way)
//   isal    ISA-L's crc32_iscsi (only when built with libisal-dev)
//   store   crc32c_extend, what the store uses
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "crc32c.h"
#ifdef SHMBUS_HAVE_ISAL
#include <isa-l/crc.h>
#endif

namespace {
using namespace shmbus::persist::detail;

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

#ifdef SHMBUS_HAVE_ISAL
// ISA-L keeps no pre/post inversion of its own: the CRC-32C of the usual convention is
// ~crc32_iscsi(p, n, ~crc).  (main() checks every variant against the table first.)
uint32_t isal(uint32_t crc, const void* p, size_t n) noexcept {
  return ~crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(p)), static_cast<int>(n),
                      ~crc);
}
#endif

#define SIZES ->Arg(36)->Arg(64)->Arg(128)->Arg(256)->Arg(1024)->Arg(64 << 10)
BENCHMARK(run<crc32c_extend_table>)->Name("crc32c/table") SIZES;
BENCHMARK(run<crc32c_extend_sse42>)->Name("crc32c/serial") SIZES;
BENCHMARK(run<crc32c_extend_3way>)->Name("crc32c/3way") SIZES;
#ifdef SHMBUS_HAVE_ISAL
BENCHMARK(run<isal>)->Name("crc32c/isal") SIZES;
#endif
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
#ifdef SHMBUS_HAVE_ISAL
    ok = ok && isal(seed, p + off, n) == want;
#endif
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
