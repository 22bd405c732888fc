// chaos_roles.h: the participants of a chaos run (producers, durable and tailing
// consumers; threads or forked processes) and the hook handler that perturbs them.
#pragma once

#include <cstdint>
#include <string>

#include "chaos.h"
#include "chaos_shared.h"
#include "shmbus/shmbus.h"

namespace shmbus::chaos {

// What the hook handler of this process does (see chaos.h).  Thread: set before the
// process's threads start (after fork in a child).
struct HandlerConfig {
  Shared* shared = nullptr;
  uint64_t seed = 1;
  uint32_t perturb_per_mille = 150;  // firings that sleep, yield or spin
  uint32_t max_sleep_us = 2000;
  uint64_t kill_at = 0;              // kill -9 at this firing of kill_step (0: never)
  int kill_step = -1;                // -1: any step counts
  bool signal_sleep = false;         // set shared->asleep at W1 (the futex phase)
};
void install_handler(const HandlerConfig& cfg);

struct ProducerRole {
  std::string ns, stream;
  uint32_t id = 0;
  uint64_t seed = 1;
  WaitStrategy wait = WaitStrategy::kBlock;
};
// Publishes single records, batches, claims (committed and aborted) until told to stop
// or past kSeqLimit; records each kOk sequence's payload hash.  Returns 0.
int run_producer(Shared* s, const ProducerRole& role);

struct ConsumerRole {
  std::string ns, stream;
  uint32_t logical = 0;   // outcome table; a durable one reads as group "g<logical>"
  bool durable = false;
  WaitStrategy wait = WaitStrategy::kBlock;
  uint64_t seed = 1;
  // Opened before the first publish: its start sequence is exact, so the accounting
  // holds from the open (else from its first record: a start at the oldest record
  // carries a lower-bound sequence).
  bool exact_start = true;
  // A tailing reader that reads with poll_in_place() and checks each record's bytes in
  // place before validate() (a record refused counts lost, never delivered).
  bool in_place = false;
};
// Polls until shared->stop_consumers and past final_seq, checking every record's own
// checksum, the accounting (delivered + gaps + lost == the range advanced over) after
// every poll, and that a durable consumer's zero-copy view is unchanged until the next
// poll.  Returns 0.
int run_consumer(Shared* s, const ConsumerRole& role);

// A small random generator (splitmix64).
struct Rng {
  uint64_t x;
  explicit Rng(uint64_t seed) : x(seed) {}
  uint64_t next() {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
};

}  // namespace shmbus::chaos

namespace shmbus::chaos {

// A persister (persist::Persister, holding producers while it is away) on DATA_DIR until
// shared->stop_persister, then stopped detached (the stream is no longer persisted).
int run_persister(Shared* s, const std::string& ns, const std::string& stream,
                  const std::string& data_dir);
// A replaying consumer (persist::ReplayConsumer from earliest: the store, then the live
// ring): records each sequence's outcome (delivered, or kGap) and checks that it never
// skips or repeats a sequence and never delivers a torn payload.
int run_replayer(Shared* s, const ConsumerRole& role, const std::string& data_dir);

}  // namespace shmbus::chaos

namespace shmbus::chaos {
// chaos_repro.cc: a deterministic repro of the replay defect (see there).
int repro_replay_empty_store();
int repro_fork_keeps_producer_alive();
int repro_start_passed(const char* what, const char* group, StartFrom start, uint64_t from);
int repro_tailing_read_shrunk();
int repro_sleeper_not_woken(const char* what, bool dead_claim, bool single, bool batch);
enum class AbandonerStall { kDecided, kHeld, kKilledHolding };
int repro_stale_abandoner(const char* what, AbandonerStall mode, bool tailing);
}  // namespace shmbus::chaos
