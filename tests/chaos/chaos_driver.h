// chaos_driver.h: the parent side of shmbus_chaos, internal to it: the options, the
// totals of a run, and the phases of a round: chaos_phase.cc (phases 1 and 2: chaos,
// then the checks of what every consumer saw) and chaos_bounds.cc (phases 3 and 4: the
// stall and futex bounds).  chaos_main.cc runs the rounds and prints the summary.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "chaos_roles.h"

namespace shmbus::chaos {

struct Options {
  int rounds = 2;
  double minutes = 0;      // > 0: rounds until this much time passed
  double seconds = 5;      // chaos phase per round
  uint64_t seed = 0;       // 0: from the clock
  uint64_t abandon_ms = 200;
  bool single_producer = false;  // a single-producer stream: one producer process at a
                                 // time (killed and restarted), no producer threads
  uint64_t epsilon_ms = 2000;  // a loaded 2-core machine under ASan; the unfixed bug
                               // held 32 claims (the fewest here) for 32 timeouts
};

inline uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
inline void sleep_ms(uint64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// The mapping every process of the run shares (made in main before the first fork).
extern Shared* g_shared;

struct Totals {
  uint64_t rounds = 0, published = 0, seqs_checked = 0, agreements = 0, gaps_agreed = 0;
  uint64_t stalls = 0, stall_max_ms = 0, stall_pending_max = 0, futex_checks = 0;
  uint64_t futex_dead_bits = 0;  // futex checks whose first publish found a dead sleeper
};
extern Totals g_tot;
extern std::string g_data_dir;  // the persister's store of this round

inline uint64_t next_seq_of(const std::string& ns) {
  auto info = stream_info(ns, "s");
  return info ? info.value().next_seq : 0;
}

// Phase 1 and 2: chaos, then the checks of what every consumer saw.
void chaos_phase(const Options& o, const std::string& ns, Rng& rng, uint64_t round_seed);
// Phase 3: a producer killed inside publish_batch (up to 256 pending claims) delays a
// consumer at most one abandon timeout (+ epsilon), whatever the number of claims.
void stall_phase(const Options& o, const std::string& ns, uint64_t capacity, Rng& rng);
// Phase 4: a consumer killed while asleep leaves its sleeper bit; the next publish may
// make two futex calls (a wake that finds nobody, then, the sleeper found dead and its
// bit cleared, one more for a holder that took the slot meanwhile), then none.
void futex_phase(const std::string& ns, Rng& rng);

}  // namespace shmbus::chaos
