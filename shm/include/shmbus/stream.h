// shmbus/stream.h: a stream as a whole: creating, removing, listing and describing it
// (StreamOptions, StreamInfo), and the vocabulary its producers and consumers share
// (payload views, wait strategies, the name's state).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/result.h"

namespace shmbus {

using Bytes = std::span<const std::byte>;
using MutableBytes = std::span<std::byte>;

// ---- the ring's format, as far as users size a ring by it (shm/FORMAT.md) ------------

// A record in the ring is a header of kRingRecordHeaderBytes, the payload, and padding up
// to a multiple of kRingRecordAlign (shm/src/layout.h asserts both against the layout).
inline constexpr uint32_t kRingRecordHeaderBytes = 32;
inline constexpr uint32_t kRingRecordAlign = 32;
// What a record costs in the ring besides its payload, on average: its header and half
// the alignment.  For sizing (`stat`'s ring bytes for a stall).
inline constexpr uint32_t kRingBytesPerRecord = kRingRecordHeaderBytes + kRingRecordAlign / 2;
// The largest StreamOptions::first_seq create_stream() takes.
inline constexpr uint64_t kMaxFirstSeq = uint64_t{1} << 63;

// The kind of a stream's store, as its header records it (the values are the header's
// codes).  Names and parsing: persist::store_kind_name(), persist::parse_store_kind().
enum class StoreKind : uint8_t {
  kFile = 0,  // buffered pwrite() of large sequential chunks, batched fdatasync()
  kPmem = 1,  // segments pre-sized and mapped with libpmem2; persist = cache flush or msync
};

// How a stream is persisted (issue: persistence).  Stored in the stream's header, so
// that readers find the store without being told.
struct PersistSettings {
  std::string store_dir;                 // absolute path of DATA_DIR/NS/STREAM
  StoreKind store_kind = StoreKind::kFile;
  bool hold_producers = true;            // a dead persister holds producers back; false:
                                         // they go on and the store records lost ranges
  bool sync = false;                     // producers may wait for durability
  std::chrono::nanoseconds flush_interval = std::chrono::milliseconds(10);
  std::chrono::nanoseconds retention_age{0};   // 0 = keep forever
  uint64_t retention_bytes = 0;                // 0 = no limit
  uint64_t segment_bytes = 64ULL << 20;
  bool secure_delete = false;            // deleted bytes are overwritten before release
};

struct StreamOptions {
  uint64_t capacity = 1 << 20;          // ring bytes, power of two, 4 KiB .. 4 GiB
  uint64_t max_record = 0;              // largest payload; 0 = capacity / 8
  uint32_t mode = 0600;                 // permission bits of the shm object
  bool exist_ok = false;                // an existing compatible stream is success
  // exist_ok: an existing object must belong to the caller, or to this uid (-1: none).
  int64_t trusted_owner = -1;
  // The sequence number of the first record (a stream re-created over its store
  // continues the store's numbering: sequence numbers are never reused).  At most
  // kMaxFirstSeq, 2^63: 2^63 more records (2,900 years at 100 M/s) never wrap past 2^64.
  uint64_t first_seq = 0;
  // A claim left uncommitted this long (its producer died) becomes a gap.
  std::chrono::milliseconds abandon_timeout{1000};
  // A durable consumer whose process is dead stops holding producers back after this
  // (it is evicted: producers may overwrite what it has not read; it learns how many
  // records it lost when it reads again).
  std::chrono::milliseconds consumer_dead_timeout{2000};
  // How long a durable group's position is kept after its last holder went away (as
  // Kafka's offsets retention): a group back within it continues from its position;
  // after it the group is forgotten (it starts anew, where `start` says).  0 = for ever.
  std::chrono::milliseconds consumer_retention{std::chrono::hours(24 * 7)};
  // One producer at a time (a second Producer::open fails with kBusy while the first
  // lives; a dead one's place is taken over).  It publishes without a locked
  // instruction (a multi-producer publish has one, the claim): faster for small records
  // (README, Benchmarks).  Fixed at creation.  (Blocking consumers of every stream pay
  // a membarrier(2) system call of a few microseconds when they go to sleep, so that
  // producers need no fence after a commit.)
  bool single_producer = false;
  // A stream created over its store (persist/: create_stream_over_store()) starts
  // persisted: these settings, durable below first_seq, the deletion watermark
  // `deleted_below` (at most first_seq), and its persister's group kPersisterGroupName
  // (detached, at first_seq: producers are held, or the lost range recorded, until a
  // persister attaches) are in its header before any other process can open it.  Set one
  // by one after the create, a reader that opened it in between read it as a stream that
  // is not persisted (a review: `tail -f` printed a stored record again), and records
  // could leave the ring before the group held them.
  std::optional<PersistSettings> persist;
  uint64_t deleted_below = 0;  // only with `persist`
};

// The consumer group a stream's persister reads with (persist::kPersisterGroup).
inline constexpr const char* kPersisterGroupName = "_persister";

struct ProducerInfo {
  uint32_t pid = 0;
  bool alive = false;
  uint64_t start_ns = 0;
  uint64_t last_active_ns = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
};

struct ConsumerInfo {
  std::string name;
  uint32_t pid = 0;          // 0 when no process holds it
  bool alive = false;        // a live process holds it
  bool durable = true;       // false: an anonymous tailing reader
  bool evicted = false;      // stopped holding producers back (dead past the timeout)
  bool expired = false;      // a group nobody held for longer than the stream's consumer
                             // retention: forgotten, its next holder starts it anew
  uint64_t next_seq = 0;     // first sequence not yet consumed
  uint64_t lag = 0;          // next_seq of stream - next_seq of consumer
  uint64_t last_active_ns = 0;
  // A durable group's loss not yet told to a holder (or being read from the store): the
  // records from this sequence up to next_seq left the ring unread; the group's next
  // holder is told of them (Consumer::still_owed()).
  std::optional<uint64_t> owed_from;
};

struct StreamInfo {
  std::string ns;
  std::string name;
  uint32_t layout_version = 0;
  bool single_producer = false;   // StreamOptions::single_producer
  uint64_t capacity = 0;
  uint64_t max_record = 0;
  uint64_t created_ns = 0;
  uint64_t first_seq = 0;         // sequence of its first record (the store's end when it
                                  // was created over its store; 0 from builds before 2026-12-05)
  uint64_t next_seq = 0;          // sequence the next published record gets
  uint64_t oldest_seq = 0;        // oldest record still in the ring
  uint64_t tail_pos = 0;          // bytes ever claimed
  uint64_t records_published = 0; // == next_seq minus abandoned
  uint64_t bytes_published = 0;   // payload bytes of committed records
  uint64_t abandoned = 0;         // claims of dead producers turned into gaps
  uint64_t aborted = 0;           // claims aborted by their producer
  uint64_t producer_waits = 0;    // times a producer waited for room
  uint64_t producer_full = 0;     // publishes refused for lack of room
  uint64_t tail_lost = 0;         // records lost by lapped tailing readers
  uint64_t evictions = 0;         // durable consumers evicted as dead
  uint64_t evicted_lost = 0;      // records evicted groups lost (counted when they read again)
  uint64_t abandon_timeout_ms = 0;
  uint64_t consumer_dead_timeout_ms = 0;
  uint64_t consumer_retention_ms = 0;   // 0: positions are kept for ever
  std::vector<ProducerInfo> producers;
  std::vector<ConsumerInfo> consumers;
  // Persistence (empty store_dir when the stream is not persisted).
  std::optional<PersistSettings> persist;
  uint64_t durable_seq = 0;          // records below are durable in the store
  uint64_t oldest_persisted_seq = 0; // oldest record still in the store
  uint64_t deleted_below = 0;        // records below were deleted on purpose
  uint64_t persister_beat_ns = 0;    // last sign of life of the persister
  uint64_t deleted_records = 0;      // cumulative, by retention and explicit delete
  uint64_t deleted_bytes = 0;
  uint64_t disk_bytes = 0;           // the store's size on disk (as last published)
  uint64_t store_errors = 0;         // store write/sync failures (each rewritten from the ring)
  uint64_t segments = 0;
  // The pmem store's granularity as the persister published it: a raw code (0 not pmem,
  // 1 byte, 2 cache line, 3 page; persist::granularity_from_code() and
  // persist::granularity_name() read it; tools/stat shows it).
  uint32_t pmem_granularity_code = 0;
};

Result<void> create_stream(std::string_view ns, std::string_view name, const StreamOptions& opts);
// Whether the existing stream `name` is one that create_stream(opts) with exist_ok accepts
// (its sizes, kind, timeouts, owner and mode), without creating one when there is none
// (kNotFound).
Result<void> check_existing_stream(std::string_view ns, std::string_view name, const StreamOptions& opts);
// Refuses while a live producer or consumer is attached unless `force`.
Result<void> remove_stream(std::string_view ns, std::string_view name, bool force = false);
Result<std::vector<std::string>> list_streams(std::string_view ns);
Result<StreamInfo> stream_info(std::string_view ns, std::string_view name);
// Why producers of a full stream wait: the durable consumer groups holding them back,
// quoted, with how far and how long they have been behind and what frees them (one
// sentence, for error messages).  Empty when no group is behind.
std::string explain_held_back(const StreamInfo& info);
// "shmbus persist NAME [--namespace NS] [--data-dir ROOT]": the command that starts the
// stream's persister again where its store is (ROOT from the header's store_dir, when
// that path is plain characters).
std::string persist_command(const StreamInfo& info);
// The same for NS/STREAM as its header says now (without --data-dir when the stream
// cannot be read).
std::string persist_command(std::string_view ns, std::string_view stream);

// ---- waiting ---------------------------------------------------------------

// How a consumer waits for a record, and a producer for room in a full ring.  The
// default everywhere (ConsumerOptions::wait, ProducerOptions::wait) is kBlock.
enum class WaitStrategy : uint8_t {
  kBusySpin,    // lowest latency, burns a core
  kSpinYield,   // spin a while (~2000 pauses), then sched_yield
  kBlock,       // the default: spin briefly (~2000 pauses, ~100 sched_yield), then
                // sleep on a futex in shared memory; the waker's futex_wake is a system
                // call only when someone sleeps (no cost while nobody waits)
};

// Whether a stream's name still refers to the object a handle has open (what `tail -F`
// follows): kRemoved (no stream by that name now), kReplaced (a new stream was created
// under the name since).
enum class NameState : uint8_t { kSame, kRemoved, kReplaced };

}  // namespace shmbus
