// soak_roles.h: the participants of the system soak (shmbus_soak) and the state they
// share with the driver.
//
// Every participant is a child process forked by the driver.  What it has seen lives in
// one MAP_SHARED anonymous mapping made before the first fork (Shared), so it outlives a
// kill -9: the driver checks it after the child is gone.  A durable consumer's progress
// lives there too, per group, and every incarnation of the group continues from it.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

namespace shmbus::soak {

inline constexpr uint32_t kMaxIncarnations = 16384;
inline constexpr uint32_t kMaxGroups = 4;

// A payload: this header, then filler; the sum covers both (seq is ~0 when the producer
// did not know it: publish() and publish_batch() assign it).
struct PayloadHeader {
  uint32_t magic;
  uint32_t incarnation;  // the producer incarnation that wrote it
  uint64_t counter;      // that incarnation's record counter: 0, 1, 2, ...
  uint64_t seq;
  uint32_t len;          // the whole payload
  uint32_t sum;
};
inline constexpr uint32_t kPayloadMagic = 0x4b414f53;  // "SOAK"
static_assert(sizeof(PayloadHeader) == 32);

// Writes a payload of `len` >= 32 bytes into `out`.
void make_payload(std::byte* out, uint32_t len, uint32_t inc, uint64_t counter, uint64_t seq);
// Checks a payload; on success fills *h.
bool check_payload(const std::byte* p, size_t len, PayloadHeader* h);

enum class Role : uint32_t { kProducer, kDurable, kTailing, kPersister, kReplay, kCount };
const char* role_name(Role r);

// One incarnation of a participant (a process lifetime).  Tailing counters follow a
// seqlock (version odd while they change) so that the driver can tell a set that a kill
// left half-written.
struct alignas(64) Incarnation {
  std::atomic<uint32_t> version;
  uint32_t role;
  std::atomic<uint64_t> first_seq;   // tailing: first record delivered (~0: none yet)
  std::atomic<uint64_t> last_seq;
  std::atomic<uint64_t> delivered;
  std::atomic<uint64_t> lost;        // tailing: Consumer::lost()
  std::atomic<uint64_t> gaps;        // tailing: Consumer::gaps()
  std::atomic<uint64_t> base_lost;   // tailing: lost() and gaps() at the first delivery
  std::atomic<uint64_t> base_gaps;   //   (what they counted before first_seq)
  std::atomic<uint64_t> laps;
  std::atomic<uint64_t> published;   // producer: records acknowledged kOk
  std::atomic<uint64_t> abandoned;   // producer: kAbandoned while alive
  std::atomic<uint64_t> errors;      // violations seen by the participant itself
  char error[160];                   // the first one
};

// A durable consumer group's progress across its incarnations.  A kill may land between
// any two instructions of the consumer, so its progress is one record written whole:
// the consumer fills the inactive copy, then flips `cur` (one store); a kill leaves
// either the old or the new progress, never half of each.  (Counters updated one by one
// made a kill between them look like a duplicate or a miscounted gap.)
struct Progress {
  std::atomic<uint64_t> next;          // sequence expected next (all below are processed)
  std::atomic<uint64_t> delivered;     // records processed (each sequence once)
  std::atomic<uint64_t> redelivered;   // the record a kill left processed but uncommitted
  std::atomic<uint64_t> skipped;       // sequences jumped over
  std::atomic<uint64_t> gaps_reported; // Consumer::gaps() passed on the way to them
  std::atomic<uint64_t> lost_reported; // Consumer::lost(), summed (must stay 0)
  std::atomic<uint64_t> duplicates;
  std::atomic<uint64_t> counter_skips; // producer counters jumped over (abandoned records)
  std::atomic<uint64_t> last_inc;      // the last record processed: its producer and
  std::atomic<uint64_t> last_counter;  // counter (counter_next is repaired from them)
};
struct ProgressView {
  uint64_t next, delivered, redelivered, skipped, gaps_reported, lost_reported, duplicates,
      counter_skips, last_inc, last_counter;
};
struct alignas(64) Group {
  Progress copy[2];
  std::atomic<uint32_t> cur;  // which copy is the group's progress
  // Per producer incarnation, the counter expected next: a cache of the progress, set
  // after each flip and repaired from last_inc/last_counter when an incarnation starts.
  std::atomic<uint64_t> counter_next[kMaxIncarnations];

  ProgressView view() const {
    const Progress& p = copy[cur.load() & 1];
    return {p.next.load(), p.delivered.load(), p.redelivered.load(), p.skipped.load(),
            p.gaps_reported.load(), p.lost_reported.load(), p.duplicates.load(),
            p.counter_skips.load(), p.last_inc.load(), p.last_counter.load()};
  }
  void publish(const ProgressView& v) {
    Progress& p = copy[(cur.load() + 1) & 1];
    p.next.store(v.next);
    p.delivered.store(v.delivered);
    p.redelivered.store(v.redelivered);
    p.skipped.store(v.skipped);
    p.gaps_reported.store(v.gaps_reported);
    p.lost_reported.store(v.lost_reported);
    p.duplicates.store(v.duplicates);
    p.counter_skips.store(v.counter_skips);
    p.last_inc.store(v.last_inc);
    p.last_counter.store(v.last_counter);
    cur.fetch_add(1);  // the flip
  }
};

struct Shared {
  std::atomic<uint64_t> next_incarnation;
  Group groups[kMaxGroups];
  Incarnation inc[kMaxIncarnations];
};

// Records a violation seen by a participant (the first message is kept).
void report(Incarnation* me, const std::string& what);

struct RoleArgs {
  std::string ns, stream;
  Shared* shared = nullptr;
  uint32_t inc = 0;             // this incarnation's index in shared->inc
  double rate = 0;              // producer: records per second (0: no limit)
  uint32_t group = 0;           // durable: index in shared->groups
  double lifetime_s = 0;        // tailing: exit after this long (0: until stopped)
  uint64_t seed = 0;
};

// Each runs until SIGTERM (or its lifetime) and returns the exit code.
int run_producer(const RoleArgs& a);
int run_durable(const RoleArgs& a);
int run_tailing(const RoleArgs& a);

}  // namespace shmbus::soak
