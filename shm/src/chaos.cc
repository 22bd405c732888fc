// chaos.cc: the process-local side of the chaos hooks (see chaos.h).  Compiled into
// both builds: an ordinary build only answers "not enabled" and counts nothing.
#include "chaos.h"

#include <atomic>

namespace shmbus::detail {

namespace {
struct StepName {
  const char* code;
  const char* name;
};
constexpr StepName kSteps[] = {
    {"C1", "claim.read"},      {"C2", "claim.advertised"}, {"C3", "claim.taken"},
    {"C4", "claim.padded"},    {"F1", "fill.fields"},      {"F2", "fill.pending"},
    {"F3", "fill.claimed"},    {"F4", "fill.payload"},     {"M1", "commit.cas"},
    {"M2", "commit.woken"},    {"A1", "abort.before"},     {"A2", "abort.cas"},
    {"B1", "batch.begun"},     {"B2", "batch.payloads"},   {"B3", "batch.committed"},
    {"R1", "reg.locked"},      {"R2", "reg.slot_held"},    {"R3", "reg.published"},
    {"R4", "reg.leaving"},     {"E1", "evict.found"},      {"E2", "evict.flagged"},
    {"E3", "evict.rejoin"},    {"X1", "abandon.dead"},     {"X2", "abandon.held"},
    {"X3", "abandon.cas"},
    {"S1", "resync.copied"},   {"S2", "resync.lapped"},    {"H1", "head.scanned"},
    {"H2", "floor.raised"},    {"W1", "wait.data"},        {"W2", "wait.space"},
    {"S3", "tail.fields"},
};
static_assert(sizeof kSteps / sizeof kSteps[0] == static_cast<size_t>(ChaosStep::kCount),
              "every step has a code and a name");

#ifdef SHMBUS_CHAOS
// acquire/release: a handler installed before threads start is seen by them.
std::atomic<ChaosHandler> g_handler{nullptr};
// relaxed: counters, read after the threads that count have stopped (or by themselves).
std::atomic<uint64_t> g_futex_calls{0};
thread_local uint64_t t_futex_calls = 0;
#endif
}  // namespace

const char* chaos_step_code(ChaosStep s) noexcept {
  const auto i = static_cast<size_t>(s);
  return i < static_cast<size_t>(ChaosStep::kCount) ? kSteps[i].code : "?";
}
const char* chaos_step_name(ChaosStep s) noexcept {
  const auto i = static_cast<size_t>(s);
  return i < static_cast<size_t>(ChaosStep::kCount) ? kSteps[i].name : "?";
}

#ifdef SHMBUS_CHAOS
bool chaos_enabled() noexcept { return true; }
void set_chaos_handler(ChaosHandler h) noexcept { g_handler.store(h, std::memory_order_release); }
void chaos_point(ChaosStep s) noexcept {
  if (ChaosHandler h = g_handler.load(std::memory_order_acquire)) h(s);
}
void chaos_count_futex() noexcept {
  ++t_futex_calls;
  g_futex_calls.fetch_add(1, std::memory_order_relaxed);
}
uint64_t chaos_futex_calls_this_thread() noexcept { return t_futex_calls; }
uint64_t chaos_futex_calls() noexcept { return g_futex_calls.load(std::memory_order_relaxed); }
#else
bool chaos_enabled() noexcept { return false; }
void set_chaos_handler(ChaosHandler) noexcept {}
uint64_t chaos_futex_calls_this_thread() noexcept { return 0; }
uint64_t chaos_futex_calls() noexcept { return 0; }
#endif

}  // namespace shmbus::detail
