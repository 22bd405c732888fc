// The physical floor: two processes bounce one shared cache line. Role A writes an odd
// value and spins until role B answers with the next even one; one-way = RTT / 2.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <new>

#include "clock.h"
#include "harness.h"
#include "workloads.h"

namespace bench {
namespace {

struct alignas(128) PingLine {
  std::atomic<uint64_t> value{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

constexpr uint64_t kStop = ~uint64_t(0);

}  // namespace

LatencyRun run_raw_pingpong(const Budget& b) {
  LatencyRun out;
  void* mem = mmap(nullptr, sizeof(PingLine), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    out.error = "mmap failed";
    return out;
  }
  auto* line = new (mem) PingLine();

  Role ping{b.core_a, [&](Ctx& ctx) {
    if (!ctx.barrier()) return 1;
    SamplePlan plan(b, ctx);
    for (uint64_t i = 0;; ++i) {
      const uint64_t ask = 2 * i + 1;
      const uint64_t c0 = ticks();
      // release/acquire: pair with the pong role's acquire load and release store.
      line->value.store(ask, std::memory_order_release);
      while (line->value.load(std::memory_order_acquire) != ask + 1) {
      }
      if (!plan.add(ticks() - c0)) break;
    }
    ctx.report().nsamples = plan.samples();
    line->value.store(kStop, std::memory_order_release);
    return 0;
  }};
  Role pong{b.core_b, [&](Ctx& ctx) {
    if (!ctx.barrier()) return 1;
    for (uint64_t want = 1;; want += 2) {
      uint64_t v;
      while ((v = line->value.load(std::memory_order_acquire)) != want) {
        if (v == kStop) return 0;
      }
      line->value.store(want + 1, std::memory_order_release);
    }
  }};
  const RunOutcome r = run_roles({ping, pong}, b.timeout);
  munmap(mem, sizeof(PingLine));
  if (!r.ok) {
    out.error = r.error;
    return out;
  }
  const SharedArea* area = shared_area();
  out.samples_ns.assign(area->samples, area->samples + area->reports[0].nsamples);
  count_disturbances(area, 2, &out.anomalies);
  out.ok = !out.samples_ns.empty();
  return out;
}

}  // namespace bench
