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

// A durable consumer group's progress across its incarnations.
struct alignas(64) Group {
  std::atomic<uint64_t> next;          // sequence expected next (all below are processed)
  std::atomic<uint64_t> delivered;     // records processed (each sequence once)
  std::atomic<uint64_t> redelivered;   // the record a kill left processed but uncommitted
  std::atomic<uint64_t> skipped;       // sequences jumped over
  std::atomic<uint64_t> gaps_reported; // Consumer::gaps(), summed over incarnations
  std::atomic<uint64_t> lost_reported; // Consumer::lost(), summed (must stay 0)
  std::atomic<uint64_t> duplicates;
  std::atomic<uint64_t> counter_skips; // producer counters jumped over (abandoned records)
  std::atomic<uint64_t> counter_next[kMaxIncarnations];  // per producer incarnation
  // The journal of the last record processed (see record_durable()): the values above
  // after it, stored before them; valid while journal_next > next.
  std::atomic<uint64_t> journal_next;
  std::atomic<uint64_t> journal_delivered;
  std::atomic<uint64_t> journal_skipped;
  std::atomic<uint64_t> journal_gaps;
  std::atomic<uint64_t> journal_counter_skips;
  std::atomic<uint64_t> journal_inc;
  std::atomic<uint64_t> journal_counter_next;
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

// A durable consumer's bookkeeping of one record it received (run_durable()): checks it
// against the group's progress and records it.  The progress is several words and a
// kill -9 can land between any two stores; a record half-recorded was reported again
// by the next incarnation as a duplicate (it got the same record, uncommitted, at a
// sequence the group did not count yet, with a producer counter already counted) or
// counted twice as skipped.  So a record is recorded through a journal: the new values,
// then journal_next (the commit point), then the values themselves; recover_group()
// (each incarnation, before its first record) finishes a journal its predecessor
// committed.  `new_gaps`: Consumer::gaps() added since the last record; `first`: the
// incarnation's first record.  Returns a violation ("" if none).  `steps` (tests only):
// stop after that many stores, as a kill would (decremented; nullptr: never).
std::string record_durable(Group* g, uint64_t seq, const PayloadHeader& h, uint64_t new_gaps,
                           bool first, int* steps = nullptr);
void recover_group(Group* g, int* steps = nullptr);

// Each runs until SIGTERM (or its lifetime) and returns the exit code.
int run_producer(const RoleArgs& a);
int run_durable(const RoleArgs& a);
int run_tailing(const RoleArgs& a);

}  // namespace shmbus::soak
