// layout.h: the bytes of a stream's shared-memory object (documented in shm/FORMAT.md).
//
//   [0, kHeaderBytes)        StreamHeader: identity, hot cursors, wake words, counters
//   [kProducerSlotsOff, ..)  kMaxProducers x ProducerSlot   (128 B each)
//   [kConsumerSlotsOff, ..)  kMaxConsumers x ConsumerSlot   (256 B each)
//   [kDataOff, kDataOff+capacity)  the ring: records, each a 32-byte RecordHeader then
//                                  the payload, padded to a multiple of 32 bytes.
//
// Everything is offsets and fixed-width integers; every atomic is address-free and
// lock-free.  Positions are byte counts since creation and only grow; the ring index
// is position & (capacity - 1).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shmbus/stream.h"

namespace shmbus::detail {

inline constexpr uint64_t kMagic = 0x315355424d48530aULL;  // "\nSHMBUS1" little-endian
inline constexpr uint32_t kLayoutVersion = 5;  // 3: capacity-relative lap tag, gap log,
                                               //    consumer_retention_ns, evicted_lost
                                               // 4: producer_hwm (was reserved5)
                                               // 5: flags (was reserved0)
// A stream without flags is written as version 4 (the same bytes: flags was reserved0,
// always 0), so that builds reading only version 4 keep opening it; one with flags is
// version 5, which they refuse (they would not honour the flags).
inline constexpr uint32_t kLayoutVersion4 = 4;
// StreamHeader::flags
inline constexpr uint32_t kFlagSingleProducer = 1;  // one producer at a time; it publishes
                                                    // with plain stores (producer.cc)
inline constexpr uint32_t kFlagPlainCommits = 2;    // durable consumers commit by a plain
                                                    // 16-byte store; producers barrier
                                                    // before sleeping for room (ring.h).
                                                    // Set with kFlagSingleProducer: on a
                                                    // multi-producer stream the CAS16
                                                    // measured faster (bench: 64 B 14 vs
                                                    // 18-22 M/s; 1 KiB 11 vs 12-29 M/s)
inline constexpr uint32_t kFlagSlotCounters = 4;     // producer slots keep their
                                                    // diagnostics counters on their second
                                                    // line (ProducerSlot), away from owner
                                                    // and claiming, which readers load: on
                                                    // the first line every publish's three
                                                    // stores there measured a single-
                                                    // producer stream's 64 B rate at 13-18
                                                    // against 22-23 M/s (one host).  Set
                                                    // with kFlagSingleProducer: multi-
                                                    // producer streams measured the same
                                                    // and stay layout 4
inline constexpr uint32_t kKnownFlags = kFlagSingleProducer | kFlagPlainCommits | kFlagSlotCounters;
inline constexpr uint64_t kMinCapacity = 4096;
inline constexpr uint64_t kMaxCapacity = 1ULL << 32;        // 4 GiB
inline constexpr uint32_t kMaxProducers = 64;
inline constexpr uint32_t kMaxConsumers = 64;
inline constexpr uint32_t kNameBytes = 104;                  // 100 chars + NUL, padded
inline constexpr uint32_t kLostLog = 16;                     // lost ranges kept in the header
inline constexpr uint32_t kGapLog = 56;                      // gap sequences kept in the header
inline constexpr uint64_t kRecordAlign = 32;
// Ring positions stay below this, 2^64 - 16 GiB (16 EiB written: 580 years at 1 GB/s):
// a cursor at or above it is forged, and refused (StreamMapping::cursors_ok(), readers),
// so that a position plus a capacity (at most 4 GiB) and the like never wrap past 2^64
// (a reader near the top of the range looped for ever).  Positions past 2^63 work
// (test_cursors.cc).
inline constexpr uint64_t kMaxPosition = 0 - (uint64_t{1} << 34);
static_assert(kMaxPosition > (uint64_t{1} << 63) && kMaxPosition + 3 * kMaxCapacity > kMaxPosition);
// A position read from shared memory that can be a record boundary: on the 32-byte grid
// and below kMaxPosition.
constexpr bool position_ok(uint64_t pos) noexcept {
  return (pos & (kRecordAlign - 1)) == 0 && pos < kMaxPosition;
}
inline constexpr uint64_t kLine = 128;                       // fixed: never hardware_*_size

// A 16-byte {pos, seq} pair updated with one lock cmpxchg16b.
struct alignas(16) PosSeq {
  uint64_t pos;
  uint64_t seq;
};

// Sequences [from, to) that a persister recorded as never stored (see lost_log).
struct LostRange {
  std::atomic<uint64_t> from;  // relaxed: ordered by the release of lost_count
  std::atomic<uint64_t> to;
};
static_assert(sizeof(LostRange) == 16);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// ---- record header (32 bytes, at every record start) ------------------------
//
// tag (atomic, the commit word) packs, XORed with the stream's salt:
//   bits 0..2    state: kPending / kData / kPad / kGap
//   bits 3..34   payload size in bytes (the record spans align32(32 + size))
//   bits 35..55  lap bits 8..28, and bits 56..63  lap bits 0..7, where the lap is
//                position >> log2(capacity) (StreamMapping::lap_shift()).  A header sits
//                at index position % capacity, so index and lap name the position it was
//                written for; the field repeats only after 2^29 laps.  The lap's low byte
//                is the word's top byte because a record whose payload ends 1..7 bytes
//                into a 32-byte slot overwrites the low bytes of whatever tag a former lap
//                left there (record boundaries move from lap to lap): that top byte is
//                never torn, so a header 1..255 laps old never passes for this lap, torn
//                or not.  (Up to layout version 2 the field was position / 32 in bits
//                3..31: it repeated every 16 GiB, and its low bits could be torn.)
// Any other value (a previous lap's tag, payload bytes) means "not written in this lap".
enum : uint64_t { kPending = 1, kData = 2, kPad = 3, kGap = 4 };

struct RecordHeader {
  std::atomic<uint64_t> tag;  // acq/rel: commit word; release-CAS by the producer pairs
                              // with the acquire load in the consumer before it reads
                              // seq/ts/type/payload
  uint64_t seq;               // written by the owning producer before the commit
  uint64_t ts_ns;
  uint32_t type;
  uint32_t owner;             // the claiming producer: slot + 1 in bits 0..7, the slot's
                              // generation in bits 8..31; written before the pending tag
                              // (whose release CAS publishes it), read by abandoners
};
static_assert(sizeof(RecordHeader) == 32);
static_assert(sizeof(RecordHeader) == kRingRecordHeaderBytes && kRecordAlign == kRingRecordAlign,
              "the public sizing constants (shmbus/stream.h) follow the layout");
static_assert(offsetof(RecordHeader, tag) == 0);
static_assert(offsetof(RecordHeader, seq) == 8);
static_assert(offsetof(RecordHeader, ts_ns) == 16);
static_assert(offsetof(RecordHeader, type) == 24);
static_assert(offsetof(RecordHeader, owner) == 28);
inline constexpr uint32_t owner_label(uint32_t slot, uint32_t gen) {
  return (slot + 1) | (gen << 8);
}
static_assert(std::is_standard_layout_v<RecordHeader>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

constexpr uint64_t record_span(uint64_t size) {
  return (sizeof(RecordHeader) + size + kRecordAlign - 1) & ~(kRecordAlign - 1);
}
// The lap field of a tag (see above) for position `pos`: lap = pos >> lap_shift, its
// low byte in bits 56..63, its bits 8..28 in bits 35..55.
inline constexpr uint64_t kTagLapMask = ~((uint64_t{1} << 35) - 1);
constexpr uint64_t tag_lap_bits(uint64_t pos, unsigned lap_shift) {
  const uint64_t lap = pos >> lap_shift;
  return ((lap & 0xff) << 56) | (((lap >> 8) & 0x1fffffULL) << 35);
}
// A lap's key: the salt XOR the lap field of position `pos`.  The fields are disjoint,
// so a tag of that lap is its key XOR (size << 3 | state) (keyed_tag()), and a tag XOR
// the key leaves (size << 3 | state) for a tag of that lap, lap bits otherwise: the
// batch paths make and check a lap's tags with one XOR each.
constexpr uint64_t tag_key(uint64_t salt, unsigned lap_shift, uint64_t pos) {
  return salt ^ tag_lap_bits(pos, lap_shift);
}
// size < 2^32 (make_tag() masks it; the batch paths' sizes are below 2^31).
constexpr uint64_t keyed_tag(uint64_t key, uint64_t state, uint64_t size) {
  return key ^ ((size << 3) | state);
}
// lap_shift: log2(capacity) (StreamMapping::lap_shift()); size < 2^32.
constexpr uint64_t make_tag(uint64_t salt, unsigned lap_shift, uint64_t pos, uint64_t state,
                            uint64_t size) {
  return keyed_tag(tag_key(salt, lap_shift, pos), state, size & 0xffffffffULL);
}
struct TagView {
  uint64_t state;
  uint64_t size;
  bool lap_ok;  // the lap field matches the expected position's lap
};
constexpr TagView decode_tag(uint64_t salt, unsigned lap_shift, uint64_t tag, uint64_t pos) {
  uint64_t v = tag ^ salt;
  return TagView{v & 7, (v >> 3) & 0xffffffffULL,
                 (v & kTagLapMask) == tag_lap_bits(pos, lap_shift)};
}

// ---- registry slots ---------------------------------------------------------

// owner word: 0 = free, else (pid << 32) | (low 32 bits of the process start time in
// clock ticks) so that a reused pid is not taken for the old process.
struct alignas(128) ProducerSlot {
  std::atomic<uint64_t> owner;         // acq/rel: CAS 0->owner claims the slot (pairs with
                                       // the acquire load of readers of the registry)
  std::atomic<uint64_t> start_ns;      // relaxed: diagnostics only
  // The counters of a stream without kFlagSlotCounters (see line1_*).
  std::atomic<uint64_t> last_active_ns;// relaxed: diagnostics only
  std::atomic<uint64_t> records;       // relaxed: single writer (the owner), racy readers
  std::atomic<uint64_t> bytes;         // relaxed: as records
  std::atomic<uint32_t> generation;    // relaxed, under the registry lock: bumped (24 bits,
                                       // never 0) each time the slot is taken; records
                                       // carry it in their owner label
  std::atomic<uint32_t> dead_gen;      // relaxed: set by an abandoner that found this
                                       // generation dead, so that every other claim it
                                       // left is abandoned without another timeout
  std::atomic<uint64_t> claiming;      // the position the owner is claiming: stored
                                       // (relaxed) before its claim CAS16, whose release
                                       // publishes it to abandoners that acquire-load the
                                       // claim cursor; release-stored ~0 once every header
                                       // of the claim carries a pending tag
  // An abandoner's hold (abandon_at(); the owner is the abandoner, not the record's
  // producer): pos | 1 while it may still CAS a gap tag into the header at pos, else 0.
  // seq_cst store before its seq_cst re-read of head, seq_cst store of 0 after the CAS
  // (then a load of space_sleepers: producers sleeping for room re-load the holds);
  // producers load it (seq_cst) after they raised floor and claim no further than
  // pos + capacity while it is set and its owner lives (compute_floor()), so that the
  // CAS never lands in a later lap's bytes.  Builds before it leave it 0 (pad).
  std::atomic<uint64_t> hold;
  // ---- second line: written by the owner on every publish, read only by `stat` ----
  // With kFlagSlotCounters, the counters live here (the three above stay 0); relaxed,
  // as above.
  std::atomic<uint64_t> line1_last_active_ns;
  std::atomic<uint64_t> line1_records;
  std::atomic<uint64_t> line1_bytes;
  uint8_t pad1[128 - 88];
};
static_assert(sizeof(ProducerSlot) == 128);
static_assert(offsetof(ProducerSlot, last_active_ns) == 16);
static_assert(offsetof(ProducerSlot, bytes) == 32);
static_assert(offsetof(ProducerSlot, line1_last_active_ns) == 64);
static_assert(offsetof(ProducerSlot, line1_records) == 72);
static_assert(offsetof(ProducerSlot, line1_bytes) == 80);
static_assert(offsetof(ProducerSlot, records) == 24);
static_assert(offsetof(ProducerSlot, generation) == 40);
static_assert(offsetof(ProducerSlot, dead_gen) == 44);
static_assert(offsetof(ProducerSlot, claiming) == 48);
static_assert(offsetof(ProducerSlot, hold) == 56);

// A producer slot's diagnostics counters, where the stream's flags put them.
struct ProducerCounters {
  std::atomic<uint64_t>* last_active_ns;
  std::atomic<uint64_t>* records;
  std::atomic<uint64_t>* bytes;
};
inline ProducerCounters producer_counters(ProducerSlot* s, uint32_t flags) noexcept {
  if (flags & kFlagSlotCounters) return {&s->line1_last_active_ns, &s->line1_records, &s->line1_bytes};
  return {&s->last_active_ns, &s->records, &s->bytes};
}

enum : uint32_t { kSlotFree = 0, kSlotInit = 1, kSlotReady = 2 };
enum : uint32_t { kKindDurable = 0, kKindTailing = 1, kKindPersister = 2 };
// ConsumerSlot::owed_kind: the status a group's owed loss is told as.
enum : uint32_t { kOwedNone = 0, kOwedEvicted = 1, kOwedBeforeOldest = 2 };

struct alignas(128) ConsumerSlot {
  // --- written by the owner on every commit: its own line ---
  // position and next_seq are one 16-byte pair: a durable owner writes both with one
  // seq_cst CAS16 (a kill never splits them; the next holder resumes from the pair);
  // a tailing reader's entry (stat only) is two release stores, position first.
  std::atomic<uint64_t> position;      // the owner finished reading [.., position);
                                       // acquire by producers computing how far they
                                       // may write
  std::atomic<uint64_t> next_seq;      // the sequence at position (producers read it
                                       // before position: a lower bound)
  std::atomic<uint64_t> last_active_ns;// relaxed: diagnostics and eviction
  // A durable group's loss not yet read (kOwedNone in owed_kind: none): the records from
  // owed_seq up to the pair's first record are owed to the group, and its next holder is
  // told of them (kEvicted / kBeforeOldest) before anything else.  Written by the owner
  // only (at a rejoin, at open, and at a commit after the loss was told, or while it is
  // read from a store); read by the next holder at open, under the registry lock, after
  // the owner is gone.  Set: owed_pos, owed_seq, owed_counted, then owed_kind (release)
  // before the pair moves past them; owed_counted alone when the loss is counted;
  // cleared: owed_kind (release) after the pair moved.  So a kill in between leaves them
  // owed twice (told again: redelivery), never not at all.
  std::atomic<uint64_t> owed_seq;      // relaxed, before owed_kind's release
  std::atomic<uint64_t> owed_pos;      // relaxed: where the gap log is counted from
  std::atomic<uint64_t> owed_counted;  // relaxed: the loss below this seq was counted
                                       // already (lost(), evicted_lost): told again, not
                                       // counted again in evicted_lost
  std::atomic<uint32_t> owed_kind;     // kOwed*: release by the owner, acquire by the next
                                       // holder
  uint8_t pad0[56 - 52];
  std::atomic<uint64_t> hold;          // this consumer's abandoner hold: as ProducerSlot::hold
  uint8_t pad0b[128 - 64];
  // --- registry line: changed only on attach/detach/evict, under the registry lock ---
  std::atomic<uint32_t> state;         // release kSlotReady after name/position are set;
                                       // acquire by producers and lookups
  std::atomic<uint32_t> evicted;       // relaxed under lock; producers skip evicted slots
  std::atomic<uint64_t> owner;         // 0 = nobody holds the name; else owner word
  char name[kNameBytes];
  std::atomic<uint32_t> kind;          // kKindDurable / kKindTailing; set before state
  uint32_t reserved;
};
static_assert(sizeof(ConsumerSlot) == 256);
static_assert(offsetof(ConsumerSlot, position) == 0 && offsetof(ConsumerSlot, next_seq) == 8 &&
              alignof(ConsumerSlot) % 16 == 0);  // the pair is a PosSeq for CAS16
static_assert(offsetof(ConsumerSlot, owed_seq) == 24 && offsetof(ConsumerSlot, owed_pos) == 32 &&
              offsetof(ConsumerSlot, owed_counted) == 40 && offsetof(ConsumerSlot, owed_kind) == 48 &&
              offsetof(ConsumerSlot, hold) == 56);
static_assert(offsetof(ConsumerSlot, state) == 128);
static_assert(offsetof(ConsumerSlot, owner) == 136);
static_assert(offsetof(ConsumerSlot, name) == 144);
static_assert(offsetof(ConsumerSlot, kind) == 248);

// ---- stream header ----------------------------------------------------------

struct StreamHeader {
  // line 0: identity, written once by the creator before `version` is released.
  uint64_t magic;
  std::atomic<uint32_t> version;       // release by the creator after every other field;
                                       // acquire by openers (0 = still initialising)
  uint32_t header_bytes;               // == kDataOff
  uint64_t capacity;
  uint64_t max_record;
  uint64_t total_bytes;                // header + capacity: the object's size
  uint64_t created_ns;
  uint64_t salt;                       // XORed into every record tag
  uint64_t abandon_timeout_ns;
  uint64_t consumer_dead_timeout_ns;
  uint32_t max_producers;
  uint32_t max_consumers;
  uint32_t creator_pid;
  uint32_t flags;                      // kFlag* (version 5; 0 in version 4)
  uint64_t consumer_retention_ns;      // a durable group whose holder is gone this long is
                                       // forgotten (its position goes); 0 = never
  uint64_t first_seq;                  // the sequence of its first record (StreamOptions::
                                       // first_seq: a stream created over its store begins at
                                       // the store's end); 0 in streams of builds before it
                                       // (the padding it took was zero)
  uint8_t pad0[128 - 104];

  // line 1: the claim cursor, CAS16 by every producer on every publish.
  PosSeq claim;                        // seq_cst CAS16: reserves [pos, pos+span) and seqs;
                                       // acquire loads by tailing readers check overwrite
  uint8_t pad1[128 - 16];

  // line 2: the commit frontier and the reclaim floor (slow path only).
  PosSeq head;                         // CAS16: all records before head.pos are committed
                                       // or gaps; advanced by producers needing room
  PosSeq floor;                        // CAS16 (max): below floor.pos data may be
                                       // overwritten; floor.seq = first seq at/after it
  uint8_t pad2[128 - 32];

  // line 3: consumer wake-up word (producers read data_sleepers after each commit).
  // Sleepers are bits, one per registry slot (not counts), so that a sleeper killed in
  // its sleep can be cleared by whoever finds its slot dead (see reap_sleepers()).
  std::atomic<uint32_t> data_futex;    // bumped (seq_cst) by a producer that saw sleepers
  uint32_t reserved3;
  std::atomic<uint64_t> data_sleepers; // seq_cst: bit j = consumer slot j sets it before
                                       // re-checking its record and clears it after;
                                       // producers load it after their commit store and
                                       // a fence (or the sleeper's membarrier: ring.h)
  uint8_t pad3[128 - 16];

  // line 4: producer wake-up word (consumers read space_sleepers after each commit).
  std::atomic<uint32_t> space_futex;
  uint32_t reserved4;
  std::atomic<uint64_t> space_sleepers;// seq_cst: bit i = producer slot i waits for room;
                                       // as data_sleepers, roles swapped (the consumer's
                                       // seq_cst position store is the other half)
  uint8_t pad4[128 - 16];

  // line 5: slow-path counters (relaxed fetch_add: statistics only).
  std::atomic<uint64_t> abandoned;      // claims turned into gaps
  std::atomic<uint64_t> abandoned_seqs; // sequence numbers those gaps hid (best effort)
  std::atomic<uint64_t> producer_waits;
  std::atomic<uint64_t> producer_full;
  std::atomic<uint64_t> tail_lost;
  std::atomic<uint64_t> evictions;
  std::atomic<uint64_t> retired_records;// from producer slots released at close/reap
  std::atomic<uint64_t> retired_bytes;
  std::atomic<uint64_t> registry_lock;  // relaxed, diagnostics: owner word of the holder
                                        // of the registry lock (an OFD lock on this
                                        // field's first byte, dropped by the kernel when
                                        // the holder dies)
  std::atomic<uint64_t> aborted;        // claims aborted by their producer (gaps too)
  std::atomic<uint32_t> consumer_hwm;   // seq_cst: 1 + highest consumer slot ever used;
                                        // raised before a slot turns ready, so scans that
                                        // stop there see every ready slot
  std::atomic<uint32_t> producer_hwm;   // seq_cst: 1 + highest producer slot ever taken;
                                        // raised under the registry lock before the slot's
                                        // owner is stored (so before any claim of it), so
                                        // that labelled_below() walks only the slots below
                                        // it (version 4; was reserved)
  std::atomic<uint64_t> evicted_lost;   // records evicted durable groups lost (counted by
                                        // the group when it reads again)
  uint8_t pad5[128 - 96];

  // line 6: persistence progress, written by the persister.
  std::atomic<uint64_t> durable_seq;    // release by the persister once records below it
                                        // are durable; acquire by wait_durable()
  std::atomic<uint32_t> durable_futex;  // bumped (seq_cst) after durable_seq moves
  uint32_t reserved6a;                  // (was a waiter count: see durable_sleepers)
  std::atomic<uint64_t> oldest_persisted_seq;  // relaxed: stats (after retention)
  std::atomic<uint64_t> deleted_below;  // release by `delete --before`; never lowered
  std::atomic<uint64_t> persister_beat_ns;  // relaxed: last sign of life
  // relaxed, all four: the persister's store statistics, for `stat` (racy by design)
  std::atomic<uint64_t> deleted_records;    // cumulative, by retention and delete
  std::atomic<uint64_t> deleted_bytes;
  std::atomic<uint64_t> disk_bytes;
  std::atomic<uint64_t> segments;
  std::atomic<uint32_t> pmem_granularity;   // 0 not pmem, 1 byte, 2 cache line, 3 page
  std::atomic<uint32_t> store_errors;       // write and sync failures of the store (cumulative)
  std::atomic<uint64_t> durable_sleepers;   // seq_cst: bit i = producer slot i sleeps in
                                            // wait_durable (as data_sleepers)
  uint8_t pad7[128 - 88];

  // line 7: persistence configuration (under the registry lock; read at attach time).
  std::atomic<uint32_t> persist_enabled;  // release after the fields below are set
  uint32_t store_kind;                  // 0 file, 1 pmem
  uint32_t on_persister_dead;           // 0 hold producers, 1 let them go (lost range)
  uint32_t durability;                  // 0 async, 1 sync
  uint64_t flush_interval_ns;
  uint64_t retention_age_ns;            // 0 = keep forever
  uint64_t retention_bytes;             // 0 = no limit
  uint64_t segment_bytes;
  uint32_t store_dir_len;               // bytes used in store_dir
  uint32_t persist_flags;               // bit 0: secure delete (overwrite before release)
  uint8_t pad8[128 - 56];
  char store_dir[2048];                 // absolute path of DATA_DIR/NS/STREAM (no NUL needed)
  // Who this object belongs to: "shmbus.NS.STREAM" is ambiguous when names hold dots
  // (namespace "a.b" + stream "c" vs "a" + "b.c"); openers check these.
  uint32_t ns_len;
  uint32_t stream_len;
  char ns[kNameBytes];
  char stream[kNameBytes];
  uint8_t pad9[3328 - (3072 + 8 + 2 * kNameBytes)];
  // Sequence ranges a let-go persister recorded as never stored, so that wait_durable()
  // never acknowledges one of them: entry i % kLostLog holds the i-th range; ranges are
  // recorded in sequence order.  Written only by the persister (one at a time).
  std::atomic<uint64_t> lost_count;     // release by the persister after entry count is
                                        // written; acquire by wait_durable()
  uint64_t reserved9;
  LostRange lost_log[kLostLog];         // relaxed entries, ordered by lost_count
  // The gap log (3600): sequence numbers of aborted and abandoned claims, so that a
  // reader lapped over them counts them as gaps, not as lost (see ring.h, log_gap()).
  // Written by whoever makes a gap, before its gap tag: every gap that a reader can
  // have passed (or been lapped over) is in the log or counted as dropped from it.
  std::atomic<uint64_t> gap_log_next;   // seq_cst fetch_add: entries ever reserved
  std::atomic<uint64_t> gap_log_dropped;// seq_cst max: 1 + the highest sequence an entry
                                        // held when it was overwritten (0: none yet);
                                        // raised before the overwrite
  std::atomic<uint64_t> gap_unknown_end;// seq_cst max: end position of the furthest gap
                                        // whose sequences nobody knows (a claim whose
                                        // producer died before it wrote its header)
  uint64_t reserved10;
  std::atomic<uint64_t> gap_log[kGapLog];  // seq_cst: 1 + a gap's sequence (0: empty);
                                           // entry i % kGapLog is reserved i-th
  uint8_t pad10[4096 - 3632 - kGapLog * 8];
};
static_assert(std::is_standard_layout_v<StreamHeader>);
static_assert(sizeof(StreamHeader) == 4096);
static_assert(offsetof(StreamHeader, lost_count) == 3328);
static_assert(offsetof(StreamHeader, lost_log) == 3344);
static_assert(offsetof(StreamHeader, gap_log_next) == 3600);
static_assert(offsetof(StreamHeader, gap_log_dropped) == 3608);
static_assert(offsetof(StreamHeader, gap_unknown_end) == 3616);
static_assert(offsetof(StreamHeader, gap_log) == 3632);
static_assert(3632 + kGapLog * 8 <= 4096);
static_assert(offsetof(StreamHeader, version) == 8);
static_assert(offsetof(StreamHeader, capacity) == 16);
static_assert(offsetof(StreamHeader, salt) == 48);
static_assert(offsetof(StreamHeader, claim) == 128);
static_assert(offsetof(StreamHeader, head) == 256);
static_assert(offsetof(StreamHeader, floor) == 272);
static_assert(offsetof(StreamHeader, data_futex) == 384);
static_assert(offsetof(StreamHeader, data_sleepers) == 392);
static_assert(offsetof(StreamHeader, space_futex) == 512);
static_assert(offsetof(StreamHeader, space_sleepers) == 520);
static_assert(offsetof(StreamHeader, durable_sleepers) == 848);
static_assert(offsetof(StreamHeader, abandoned) == 640);
static_assert(offsetof(StreamHeader, registry_lock) == 704);
static_assert(offsetof(StreamHeader, aborted) == 712);
static_assert(offsetof(StreamHeader, consumer_hwm) == 720);
static_assert(offsetof(StreamHeader, producer_hwm) == 724);
static_assert(offsetof(StreamHeader, evicted_lost) == 728);
static_assert(offsetof(StreamHeader, consumer_retention_ns) == 88);
static_assert(offsetof(StreamHeader, first_seq) == 96);
static_assert(offsetof(StreamHeader, flags) == 84);
static_assert(offsetof(StreamHeader, durable_seq) == 768);
static_assert(offsetof(StreamHeader, deleted_below) == 792);
static_assert(offsetof(StreamHeader, deleted_records) == 808);
static_assert(offsetof(StreamHeader, pmem_granularity) == 840);
static_assert(offsetof(StreamHeader, store_errors) == 844);
static_assert(offsetof(StreamHeader, persist_enabled) == 896);
static_assert(offsetof(StreamHeader, segment_bytes) == 936);
static_assert(offsetof(StreamHeader, store_dir) == 1024);
static_assert(offsetof(StreamHeader, ns_len) == 3072);
static_assert(offsetof(StreamHeader, ns) == 3080);
static_assert(offsetof(StreamHeader, stream) == 3184);

inline constexpr uint64_t kProducerSlotsOff = sizeof(StreamHeader);
inline constexpr uint64_t kConsumerSlotsOff = kProducerSlotsOff + kMaxProducers * sizeof(ProducerSlot);
inline constexpr uint64_t kDataOff = kConsumerSlotsOff + kMaxConsumers * sizeof(ConsumerSlot);
static_assert(kProducerSlotsOff == 4096);
static_assert(kConsumerSlotsOff == 4096 + 8192);
static_assert(kDataOff == 4096 + 8192 + 16384);
static_assert(kDataOff % 4096 == 0);

// ---- 16-byte CAS ------------------------------------------------------------
// lock cmpxchg16b (inlined with -mcx16): lock-free on every x86-64 that runs this.
static_assert(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16, "build with -mcx16");

inline unsigned __int128 as_u128(PosSeq v) {
  return (static_cast<unsigned __int128>(v.seq) << 64) | v.pos;
}
inline PosSeq from_u128(unsigned __int128 v) {
  return PosSeq{static_cast<uint64_t>(v), static_cast<uint64_t>(v >> 64)};
}
// seq_cst compare-and-swap; on failure *expected holds the current value.
inline bool cas16(PosSeq* target, PosSeq* expected, PosSeq desired) {
  auto* p = reinterpret_cast<unsigned __int128*>(target);
  unsigned __int128 exp = as_u128(*expected);
  unsigned __int128 got = __sync_val_compare_and_swap(p, exp, as_u128(desired));
  if (got == exp) return true;
  *expected = from_u128(got);
  return false;
}
// An atomic snapshot of a PosSeq (a CAS that writes back what it read).
inline PosSeq load16(PosSeq* target) {
  PosSeq v{0, 0};
  cas16(target, &v, v);
  return v;
}
// Relaxed single-field accessors for record fields that lapped tailing readers may read
// while a producer rewrites them (they validate against the claim cursor afterwards).
template <class T>
inline void store_relaxed(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
template <class T>
inline T load_relaxed(const T* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

// A {pos, seq} snapshot with plain loads (read-only mappings too): both halves change
// together in one CAS16, so an unchanged pos brackets the seq.  Bounded: a peer that
// keeps rewriting the pair cannot hold the reader (the last read is returned; callers
// validate what they got).
inline PosSeq read_posseq_bounded(const PosSeq* p) noexcept {
  PosSeq v{0, 0};
  for (int i = 0; i < 1000; ++i) {
    v.pos = __atomic_load_n(&p->pos, __ATOMIC_ACQUIRE);
    v.seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&p->pos, __ATOMIC_ACQUIRE) == v.pos) break;
  }
  return v;
}

// Only the pos half, as a plain acquire load (a torn pair is never used from this).
inline uint64_t load_pos(const PosSeq* target) {
  return __atomic_load_n(&target->pos, __ATOMIC_ACQUIRE);
}
// The pos half, seq_cst (in the single order with other seq_cst accesses).
inline uint64_t load_pos_seq_cst(const PosSeq* target) {
  return __atomic_load_n(&target->pos, __ATOMIC_SEQ_CST);
}

}  // namespace shmbus::detail
