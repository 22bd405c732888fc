// chaos_shared.h: what the chaos harness's processes share (one MAP_SHARED anonymous
// mapping made before the first fork): stop flags, counters, the first violation's text,
// and the per-sequence outcome tables that every consumer and producer fills in.
#pragma once

#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>

namespace shmbus::chaos {

// Sequence numbers a round may use (producers stop below kSeqLimit; a batch or two in
// flight may pass it, which the tables' margin holds).
inline constexpr uint64_t kMaxSeq = 1 << 16;
inline constexpr uint64_t kSeqLimit = kMaxSeq - 8192;
inline constexpr uint32_t kMaxLogical = 16;  // logical consumers (incarnations share one)
inline constexpr uint32_t kSteps = 32;       // >= ChaosStep::kCount

// An outcome: 0 = not seen; kDelivered | low 32 bits of the payload's hash; kGap; kLost.
// The producers' table holds kDelivered | hash for a kOk publish, kGap for an abort.
inline constexpr uint64_t kDelivered = 1ULL << 32;
inline constexpr uint64_t kGap = 2ULL << 32;
inline constexpr uint64_t kLost = 3ULL << 32;

struct Shared {
  std::atomic<uint32_t> stop_producers;   // set by the parent: finish and exit
  std::atomic<uint32_t> stop_consumers;   // set once final_seq is known
  std::atomic<uint64_t> final_seq;        // consumers exit when they pass it
  std::atomic<uint64_t> perturbations;    // hook firings that slept, yielded or spun
  std::atomic<uint64_t> firings;          // all hook firings
  std::atomic<uint64_t> self_kills;       // kill -9 at a hook
  std::atomic<uint64_t> ext_kills;        // kill -9 from the parent
  std::atomic<uint64_t> kills_at[kSteps];
  std::atomic<uint64_t> fired_at[kSteps];  // firings per step (coverage)
  std::atomic<uint64_t> delivered;        // records delivered (all consumers)
  std::atomic<uint64_t> rechecked;        // durable zero-copy views re-checked
  std::atomic<uint64_t> refused;          // records read in place that validate() refused
  std::atomic<uint64_t> violations;
  std::atomic<uint32_t> opened[kMaxLogical];  // consumer incarnations opened
  std::atomic<uint32_t> asleep;            // a futex-phase consumer reached W1
  std::atomic<uint32_t> go_producers;      // the threads process starts its producers
  std::atomic<uint32_t> thread_producers_done;  // ... and they have all returned
  std::atomic<uint32_t> stop_persister;    // the persister stops (detached) and exits
  std::atomic<uint64_t> replayed;          // records delivered by replaying consumers
  std::atomic<uint64_t> replay_gaps;       // kGap ranges reported by them
  std::atomic<uint32_t> violation_taken;
  char violation[1024];
  std::atomic<uint64_t> published[kMaxSeq];
  std::atomic<uint64_t> seen[kMaxLogical][kMaxSeq];
};

// Records a violation (the first one's text is kept) and prints it.  Thread: any.
inline void violate(Shared* s, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline void violate(Shared* s, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  s->violations.fetch_add(1, std::memory_order_relaxed);
  uint32_t z = 0;
  if (s->violation_taken.compare_exchange_strong(z, 1)) std::memcpy(s->violation, buf, sizeof buf);
  std::fprintf(stderr, "chaos VIOLATION: %s\n", buf);
}

inline const char* outcome_name(uint64_t v) {
  switch (v & ~0xffffffffULL) {
    case 0: return "unseen";
    case kDelivered: return "delivered";
    case kGap: return "gap";
    case kLost: return "lost";
    default: return "?";
  }
}

// Stores outcome v of seq in table t: the first word stays unless it is kLost (a lap
// says nothing about the record).  A different delivered hash, or delivered against a
// gap, is a violation.  Thread: any.
inline void record_outcome(Shared* s, std::atomic<uint64_t>* t, const char* who, uint64_t seq,
                           uint64_t v) {
  if (seq >= kMaxSeq) return;
  uint64_t cur = 0;
  for (;;) {
    if (t[seq].compare_exchange_strong(cur, v)) return;
    if (cur == v || v == kLost) return;
    if (cur == kLost) continue;  // replace a lap's "lost" by what was seen
    violate(s, "%s: seq %llu was %s %08llx, now %s %08llx", who,
            static_cast<unsigned long long>(seq), outcome_name(cur),
            static_cast<unsigned long long>(cur & 0xffffffff), outcome_name(v),
            static_cast<unsigned long long>(v & 0xffffffff));
    return;
  }
}

// ---- payloads carry their own checksum -------------------------------------------

inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}
inline uint64_t hash_bytes(const std::byte* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 0x100000001b3ULL;
  return mix(h);
}
inline constexpr size_t kMinPayload = 24;
// [u32 size][u32 producer][u64 index][filler][u64 hash of everything before it]
inline void make_payload(std::byte* p, size_t n, uint32_t producer, uint64_t index) {
  const uint32_t size = static_cast<uint32_t>(n);
  std::memcpy(p, &size, 4);
  std::memcpy(p + 4, &producer, 4);
  std::memcpy(p + 8, &index, 8);
  uint64_t x = mix((static_cast<uint64_t>(producer) << 40) ^ index);
  for (size_t i = 16; i + 8 < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = static_cast<std::byte>(x >> 56);
  }
  const uint64_t h = hash_bytes(p, n - 8);
  std::memcpy(p + n - 8, &h, 8);
}
// The hash if the payload is whole, else 0 (a torn or foreign payload).
inline uint64_t check_payload(std::span<const std::byte> b) {
  if (b.size() < kMinPayload) return 0;
  uint32_t size;
  std::memcpy(&size, b.data(), 4);
  if (size != b.size()) return 0;
  uint64_t h;
  std::memcpy(&h, b.data() + b.size() - 8, 8);
  if (hash_bytes(b.data(), b.size() - 8) != h) return 0;
  return h | 1;  // never 0
}

}  // namespace shmbus::chaos
